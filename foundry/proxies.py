"""The client's address behind the platform's own proxies.

Behind a load balancer or reverse proxy every request's peer (`REMOTE_ADDR`) is the proxy. With
FOUNDRY_TRUSTED_PROXIES set (CIDRs), a request whose peer is in them has its `REMOTE_ADDR`
replaced, before anything reads it (sign-in limits, audit events, log lines, spans), by the
client's address from `X-Forwarded-For`: the right-most address there that is not itself a
trusted proxy — what the outermost trusted proxy saw, since anything left of it was written by
the client and may be forged. A request from any other peer keeps its peer's address, whatever
its `X-Forwarded-For` says; so does one whose header holds no valid address (an address with its
port, `a.b.c.d:port` or `[v6]:port`, is that address). The proxy's own
address stays in `foundry.proxy_addr`. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a
dual-stack listener sees an IPv4 peer) is the IPv4 address it maps, for the peer and every hop.
`X-Forwarded-Proto` (what FOUNDRY_BEHIND_TLS_PROXY trusts for whether the request came over
https) is likewise taken only from those proxies: from any other peer it is dropped.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `text` writes; an IPv4-mapped IPv6 one (::ffff:a.b.c.d, how a dual-stack
    listener sees an IPv4 peer) as the IPv4 address it is, which IPv4 networks hold. A port after
    it (`a.b.c.d:port`, `[v6]:port`: how some proxies, Azure's Application Gateway among them,
    write X-Forwarded-For) is not part of it."""
    text = text.strip()
    if text.startswith("["):
        text, closed, port = text[1:].partition("]")
        if not closed or (port and not (port[0] == ":" and port[1:].isdigit() and port[1:].isascii())):
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not (port.isdigit() and port.isascii()):
            return None
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def client_address(meta: dict, trusted) -> str | None:
    """The client's address for a request with these META, or None to keep REMOTE_ADDR."""
    peer = _address(meta.get("REMOTE_ADDR", ""))
    if peer is None or not any(peer in network for network in trusted):
        return None
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    hops = [_address(part) for part in forwarded.split(",")] if forwarded else []
    client = None
    for hop in reversed(hops):
        if hop is None:
            return None  # a header the proxies did not write as expected: not trusted
        client = hop
        if not any(hop in network for network in trusted):
            break
    return str(client) if client is not None else None


def proxy_trusted(peer: str, trusted) -> bool:
    """Whether headers a TLS proxy writes (`X-Forwarded-Proto`) are taken from this peer: from any
    when FOUNDRY_TRUSTED_PROXIES is empty (FOUNDRY_BEHIND_TLS_PROXY alone), else only from those."""
    if not trusted:
        return True
    address = _address(peer)
    return address is not None and any(address in network for network in trusted)


def forwarded_apply(meta: dict, trusted) -> None:
    """REMOTE_ADDR made the client's, from a trusted proxy's X-Forwarded-For (the proxy's kept as
    `foundry.proxy_addr`): for Django's requests (the middleware) and /mcp's, which the MCP
    gateway serves without Django's middleware."""
    if trusted:
        if not proxy_trusted(meta.get("REMOTE_ADDR", ""), trusted):
            meta.pop("HTTP_X_FORWARDED_PROTO", None)  # a client's word for https: not the proxy's
        client = client_address(meta, trusted)
        if client is not None:
            meta["foundry.proxy_addr"] = meta.get("REMOTE_ADDR", "")
            meta["REMOTE_ADDR"] = client


class ForwardedForMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = settings.FOUNDRY_TRUSTED_PROXIES

    def __call__(self, request: HttpRequest):
        forwarded_apply(request.META, self.trusted)
        return self.get_response(request)
