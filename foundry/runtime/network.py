"""Outbound HTTP for agent tools, safe against server-side request forgery.

Every hop (the first request and each redirect, at most `max_redirects`) is checked before a
byte is sent: the scheme is http or https, the host is one the tool declares (`*.example.com`
matches any subdomain, not the apex; a declared `host:port` matches only that port), and the
host's addresses, resolved here, are all public. The connection then goes to the checked
address itself — the URL's host is replaced by the IP, with the Host header and TLS SNI (and
so certificate verification) kept on the real name — so a second DNS answer cannot swap in a
private address. Refused unless the policy says otherwise: private, loopback, link-local,
multicast, reserved, unspecified and shared (CGNAT) addresses, including IPv4 addresses
embedded in IPv6 (mapped, 6to4, NAT64). `allow_private` admits private and loopback addresses
(a tenant setting); `allowed_networks` admits the networks listed; link-local (cloud metadata),
multicast and unspecified addresses stay refused unless listed in `allowed_networks` (the
unspecified address never). Proxies from the environment are ignored.

Responses are bounded: `max_response_bytes` of decoded body (a Content-Length above it is
refused before reading; gzip/deflate are inflated incrementally under the same bound), and
time: connect, each read, and the whole exchange end at the deadline given.

An `idempotency_key` is sent as the `Idempotency-Key` header on every hop, so a server can tell
a repeated call (a run recovered after its worker died) from a new one.
"""

import functools
import ipaddress
import re
import socket
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import httpcore
import httpx

from foundry.errors import CodedError
from foundry.manifests.validation import host_allowed, url_port

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "AgentFoundry/1 (+agent tool)"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class FetchError(CodedError):
    """A request refused by policy or failed on the way. `code` is stable; `message` plain."""


@dataclass(frozen=True)
class NetworkPolicy:
    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_redirects: int = MAX_REDIRECTS
    # False: plain http reaches only addresses that are not public (those the policy allows), as
    # checked on the address connected to, at every hop; https for the rest.
    plain_http_public: bool = True


@dataclass(frozen=True)
class FetchResult:
    status: int
    url: str
    content_type: str
    body: bytes
    redirects: list[str] = field(default_factory=list)

    def text(self) -> str:
        charset = "utf-8"
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except (LookupError, ValueError):  # unknown, or a codec refusing "replace" (idna, punycode, undefined)
            return self.body.decode("utf-8", errors="replace")


# --- addresses ------------------------------------------------------------------------------


def _embedded_ipv4(ip: Address) -> Address:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip.sixtofour:
            return ip.sixtofour
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


# Not globally reachable (IANA's special-purpose registries), whatever the interpreter's tables
# say: before Python 3.11.10 (CVE-2024-4032) they called 192.0.0.8-192.0.0.255 global, and
# 3fff::/20 (documentation, RFC 9637) and 5f00::/16 (SRv6 SIDs, RFC 9602) are newer than them.
_NOT_GLOBAL = tuple(ipaddress.ip_network(network) for network in ("192.0.0.0/24", "3fff::/20", "5f00::/16"))
_ANYCAST = (ipaddress.ip_address("192.0.0.9"), ipaddress.ip_address("192.0.0.10"))  # globally reachable in it


def _listed_not_global(ip: Address) -> bool:
    return ip not in _ANYCAST and any(ip in network for network in _NOT_GLOBAL)


def address_class(ip: Address) -> str | None:
    """Why `ip` is not a public address ("loopback", "private", …), or None if it is public."""
    ip = _embedded_ipv4(ip)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        # fec0::/10, deprecated site-local (RFC 3879): never routed globally, yet ipaddress
        # counts it as global.
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global or _listed_not_global(ip)),
    )
    return next((name for name, hit in checks if hit), None)


def literal_address(host: str) -> Address | None:
    """The address a host written as one stands for, else None (a name): also the spellings
    resolvers still read as IPv4 (127.1, 2130706433, 0x7f000001), a trailing dot (127.0.0.1.),
    and IPv6 in brackets. For checks when a URL or host is saved; names are checked after
    resolution, at every connection."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def address_refusal(ip: Address, policy: NetworkPolicy) -> str | None:
    """None if the policy lets a request reach `ip`, else the address class that is refused."""
    kind = address_class(ip)
    if kind is None or kind == "unspecified":
        return kind
    if any(ip.version == net.version and ip in net for net in policy.allowed_networks):
        return None
    if policy.allow_private and kind in ("private", "site-local", "loopback", "non-public"):
        return None
    return kind


def _resolve(host: str, port: int) -> list[str]:
    if host == "localhost" or host.endswith(".localhost"):
        # RFC 6761: .localhost names are loopback, whatever a resolver says (then refused unless
        # an operator allowed loopback, as any other loopback address).
        return ["127.0.0.1"]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


# Each lookup runs in a thread of its own (getaddrinfo cannot be told a time limit): a name whose
# DNS server never answers holds that thread until the system resolver gives up (10-30 s), not the
# call, which ends at its deadline. Lookups still unanswered are bounded per name and per process,
# so one such name cannot keep the process's other lookups (another run's, a provider's) from
# being tried: past a bound, a lookup of that name fails at once as the stalled ones would.
LOOKUPS_PER_NAME = 4
LOOKUPS_PER_PROCESS = 64
_pending: Counter[str] = Counter()  # lookups started and not yet answered, per name
_pending_lock = threading.Lock()


def _lookup(resolver: Resolver, host: str, port: int) -> Future:
    key = host.lower()
    with _pending_lock:
        if _pending[key] >= LOOKUPS_PER_NAME or _pending.total() >= LOOKUPS_PER_PROCESS:
            raise FetchError("http_timeout", f"Earlier lookups of {host!r} are still unanswered.")
        _pending[key] += 1
    answer: Future = Future()

    def work() -> None:
        try:
            answer.set_result(resolver(host, port))
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller, whose result() raises it
            answer.set_exception(exc)
        finally:
            with _pending_lock:
                _pending[key] -= 1
                if not _pending[key]:
                    del _pending[key]

    threading.Thread(target=work, name="foundry-dns", daemon=True).start()
    return answer


def resolver_bounded(resolver: Resolver, deadline: float, timeout: float) -> Resolver:
    """`resolver`, answering by `deadline` (time.monotonic()) or raising FetchError http_timeout."""

    def resolve(host: str, port: int) -> list[str]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError("http_timeout", f"No answer within {timeout:g} s.")
        try:
            return _lookup(resolver, host, port).result(timeout=left)
        except FutureTimeout:
            raise FetchError("http_timeout", f"Resolving {host!r} took longer than the call's {timeout:g} s.") from None

    return resolve


def addresses_resolved(host: str, port: int, *, deadline: float, timeout: float) -> list[Address]:
    """`host`'s addresses, answered by `deadline` (FetchError http_timeout past it; OSError,
    UnicodeError or ValueError when it does not resolve)."""
    return [ipaddress.ip_address(a.split("%")[0]) for a in resolver_bounded(_resolve, deadline, timeout)(host, port)]


# --- fetch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hop:
    url: httpx.URL  # with the checked IP as its host
    host_header: str
    sni: str | None
    others: tuple[httpx.URL, ...] = ()  # the same with the name's other checked addresses, in order


def _check(url: httpx.URL, hosts: Sequence[str], policy: NetworkPolicy, resolver: Resolver) -> _Hop:
    if url.scheme not in ("http", "https"):
        raise FetchError("http_scheme_refused", f"Only http and https URLs are allowed, not {url.scheme!r}.")
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise FetchError("http_url_invalid", "The URL has no host.")
    port = url_port(url.scheme, url.port)
    if not host_allowed(host, port, hosts):
        raise FetchError("http_host_undeclared", f"Host {host!r} is not among the tool's declared hosts.")
    try:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise FetchError("http_dns_failed", f"Could not resolve {host!r}: {exc}.") from None
    if not addresses:
        raise FetchError("http_dns_failed", f"{host!r} has no address.")
    for ip in addresses:
        refused = address_refusal(ip, policy)
        if refused:
            raise FetchError(
                "http_address_refused",
                f"{host!r} resolves to {ip}, a {refused} address; requests to it are refused.",
            )
    if url.scheme == "http" and not policy.plain_http_public:
        public = next((ip for ip in addresses if address_class(ip) is None), None)
        if public is not None:
            raise FetchError(
                "http_plain_refused",
                f"{host!r} resolves to {public}, a public address: plain http is refused there; use https.",
            )
    named = f"[{host}]" if ":" in host else host  # an IPv6 literal is bracketed (RFC 9110 §7.2)
    host_header = named if url.port is None else f"{named}:{url.port}"
    # Every address is checked above; the first is asked, the others if it cannot be reached.
    urls = [url.copy_with(host=str(ip)) for ip in dict.fromkeys(addresses)]
    return _Hop(urls[0], host_header, host if url.scheme == "https" else None, tuple(urls[1:]))


def _redirected(method: str, status: int) -> str:
    if status == 303 or (status in (301, 302) and method == "POST"):
        return "GET"
    return method


# --- a deadline for the whole exchange --------------------------------------------------------
# httpx's timeouts bound each operation: a peer sending a byte of its answer every few seconds
# restarts the read clock, and could hold the exchange for hours. Inside `exchange_deadline`,
# every connect, read, write and TLS handshake of a transport built on `deadline_backend` waits
# at most until the deadline instead. The deadline is read at each operation (a context
# variable, so per thread), not kept by a connection: a pooled connection reused later carries none.

_deadline: ContextVar[float | None] = ContextVar("foundry_exchange_deadline", default=None)


@contextmanager
def exchange_deadline(deadline: float) -> Iterator[None]:
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


class _DeadlineStream:
    """An httpcore (or httpcore2) network stream whose operations end by the current deadline."""

    def __init__(self, stream, core):
        self._stream, self._core = stream, core

    def _wait(self, timeout: float | None, timed_out: str) -> float | None:
        deadline = _deadline.get()
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise getattr(self._core, timed_out)("The exchange's deadline passed.")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._wait(timeout, "ReadTimeout"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._wait(timeout, "WriteTimeout"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        wait = self._wait(timeout, "ConnectTimeout")
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, wait), self._core)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend:
    """httpcore's (or httpcore2's) synchronous network backend under the current deadline."""

    def __init__(self, core):
        self._core, self._backend = core, core.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        wait = _DeadlineStream(None, self._core)._wait(timeout, "ConnectTimeout")
        stream = self._backend.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self._core)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise self._core.ConnectError("Unix sockets are not reached from here.")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def deadline_backend(core) -> _DeadlineBackend:
    """A network backend for `core` (the httpcore module, or httpcore2) honouring `exchange_deadline`."""
    return _DeadlineBackend(core)


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """httpx's default context (its CA bundle, or SSL_CERT_FILE/SSL_CERT_DIR as the process
    started), made once: each one reads the whole bundle, ~35 ms, and every HTTP tool call and
    webhook delivery made two. A context is safe to share between threads."""
    return httpx.create_ssl_context(verify=True)


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self, deadline: float, verify: ssl.SSLContext | bool):
        if not isinstance(verify, ssl.SSLContext):
            verify = _verifying_context() if verify else httpx.create_ssl_context(verify=False)
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=verify, network_backend=deadline_backend(httpcore))
        self._deadline = deadline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with exchange_deadline(self._deadline):  # the answer's head; its body is read afterwards
            return super().handle_request(request)


def deadline_client(deadline: float, *, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """An httpx client (no proxies from the environment, no redirects followed) whose requests
    get their answer's head by `deadline` (time.monotonic()), however slowly the peer sends it:
    past it, httpx.TimeoutException. Reading the body is the caller's to bound (`_read` does)."""
    return httpx.Client(transport=_DeadlineTransport(deadline, verify), trust_env=False, follow_redirects=False)


def fetch(
    method: str,
    url: str,
    *,
    hosts: Sequence[str],
    timeout: float,
    policy: NetworkPolicy = NetworkPolicy(),
    params: Mapping | None = None,
    json_body: object = None,
    form_body: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    hop_headers: Callable[[str, str], Mapping[str, str]] | None = None,
    resolver: Resolver = _resolve,
    idempotency_key: str | None = None,
) -> FetchResult:
    """One HTTP exchange under `policy`: FetchResult, or FetchError saying what was refused or failed.

    `hop_headers(host_header, scheme)`: headers for one hop only, asked again after each redirect
    (a credential for one host must not follow a redirect to another, nor to plain http)."""
    deadline = time.monotonic() + timeout
    current = _url(url)
    # A null argument is no parameter: sent as `None` it would filter on that word. Added after the
    # URL's own query, which goes out as written (merging would decode and write it anew).
    # A list is the parameter repeated, one per item (`tags=a&tags=b`), as servers read a list.
    pairs = [(k, item) for k, v in (params or {}).items() for item in (v if isinstance(v, list) else [v])]
    added = urlencode([(k, _param(v)) for k, v in pairs if v is not None])
    if added:
        try:
            current = current.copy_with(
                query=current.query + b"&" + added.encode() if current.query else added.encode()
            )
        except (httpx.InvalidURL, ValueError):
            raise FetchError("http_url_invalid", "The query the arguments make is too long or not valid.") from None
    redirects: list[str] = []
    extra = {**(headers or {}), **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
    with deadline_client(deadline) as client:
        while True:
            hop = _check(current, hosts, policy, resolver_bounded(resolver, deadline, timeout))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError("http_timeout", f"No answer within {timeout:g} s.")
            # No cookie crosses hops: the jar keys them by the checked address, which two declared
            # hosts behind one load balancer share (and a credential of one host never follows a
            # redirect to another).
            client.cookies.clear()
            headers = {
                "Host": hop.host_header,
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "gzip, deflate",
                **extra,
                **(hop_headers(hop.host_header, current.scheme) if hop_headers else {}),
            }
            # The name's addresses in turn, as HTTP clients go through a name's addresses: the
            # next one only when this one could not be connected to (nothing of the request sent).
            targets = [hop.url, *hop.others]
            for n, target in enumerate(targets):
                try:
                    request = client.build_request(
                        method,
                        target,
                        headers=headers,
                        json=json_body,
                        data=form_body,
                        timeout=httpx.Timeout(max(deadline - time.monotonic(), 0.001)),
                        extensions={"sni_hostname": hop.sni} if hop.sni else None,
                    )
                except UnicodeError:  # a header value no HTTP header can carry (a non-ASCII token)
                    raise FetchError("http_request_invalid", "A header of the request is not ASCII text.") from None
                try:
                    response = client.send(request, stream=True)
                    break
                except httpx.TimeoutException:
                    raise FetchError("http_timeout", f"No answer within {timeout:g} s.") from None
                except httpx.ConnectError as exc:
                    if n + 1 < len(targets) and time.monotonic() < deadline:
                        continue
                    raise FetchError("http_failed", f"The request to {hop.host_header!r} failed: {exc}.") from None
                except httpx.HTTPError as exc:
                    raise FetchError("http_failed", f"The request to {hop.host_header!r} failed: {exc}.") from None
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECTS and location:
                    if len(redirects) >= policy.max_redirects:
                        raise FetchError("http_too_many_redirects", f"More than {policy.max_redirects} redirects.")
                    current = _redirect_target(current, location)
                    redirects.append(_shown(current))
                    method = _redirected(method, response.status_code)
                    if method == "GET":
                        json_body = form_body = None
                    continue
                with exchange_deadline(deadline):  # each read of the body waits at most until then
                    body = _read(response, policy.max_response_bytes, deadline, timeout)
                return FetchResult(
                    response.status_code, _shown(current), response.headers.get("content-type", ""), body, redirects
                )
            finally:
                response.close()


def _shown(url: httpx.URL) -> str:
    """The URL as results name it (the model, the run's timeline, its checkpoints): without the
    user information a redirect's Location may carry."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = urljoin(str(current), location)
    except ValueError:  # say, an IPv6 literal left open: http://[x/
        message = f"The redirect's Location {_quoted(location)} is not a valid URL."
        raise FetchError("http_url_invalid", message) from None
    return _url(target)


def _url(text: str) -> httpx.URL:
    try:
        return httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchError("http_url_invalid", f"{_quoted(text)} is not a valid URL.") from None


# A URL's user information: everything between `//` and the authority's last `@`.
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#]*@")


def _quoted(text: str) -> str:
    """An invalid URL as a message quotes it: its start, without the user information (a password)
    that `_shown` leaves out of a valid one."""
    return repr(_USERINFO.sub(r"\1", text, count=1)[:200])


def _param(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read(response: httpx.Response, limit: int, deadline: float, timeout: float) -> bytes:
    too_large = FetchError("http_response_too_large", f"The response is larger than {limit:,} bytes.")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
        raise FetchError("http_encoding_refused", f"Content-Encoding {encoding!r} is not accepted.")
    # wbits 47: zlib or gzip framing, detected from the header.
    inflater = zlib.decompressobj(47) if encoding not in ("identity", "") else None
    # Compressed bytes are bounded too: a stream may inflate to nothing (empty stored blocks), and
    # what follows its end would be read on, unbounded, into `unused_data`.
    raw_limit, raw = limit + limit // 8 + 65536, 0
    body = bytearray()
    try:
        for chunk in response.iter_raw():
            if inflater is not None:
                raw += len(chunk)
                if raw > raw_limit:
                    raise too_large
                chunk = inflater.decompress(chunk, limit + 1 - len(body))
                if inflater.unconsumed_tail:
                    raise too_large
                if inflater.eof:  # the body is whole; anything after it is not read
                    body += chunk
                    if len(body) > limit:
                        raise too_large
                    break
            body += chunk
            if len(body) > limit:
                raise too_large
            if time.monotonic() > deadline:
                raise FetchError("http_timeout", f"The response did not arrive within {timeout:g} s.")
    except httpx.TimeoutException:
        raise FetchError("http_timeout", f"The response did not arrive within {timeout:g} s.") from None
    except httpx.HTTPError as exc:
        raise FetchError("http_failed", f"Reading the response failed: {exc}.") from None
    except zlib.error:
        raise FetchError("http_failed", "The response's compressed body is corrupt.") from None
    return bytes(body)
