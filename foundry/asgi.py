"""The ASGI application: Django for every path, and the MCP endpoint at /mcp.

/mcp is the MCP SDK's Streamable HTTP app (stateless: any process behind a load balancer can
answer any request), behind foundry.mcp.gateway (workspace from the Host, Origin check, bearer
authentication). The SDK's session manager runs in this application's lifespan. Production
may serve the console and API with gunicorn (WSGI, faster for Django's sync views) and only
/mcp from this application: docs/operations/serving.md.
"""

import contextlib
import os
import time

import django
from django.core.handlers.asgi import ASGIHandler, ASGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")

from foundry.process import loaded_freeze
from foundry.telemetry import telemetry_enabled, telemetry_setup


class _Request(ASGIRequest):
    """Django's ASGI request, with a body sent chunked (no Content-Length: the server has read it
    whole into `body_file`) given its length, as foundry/wsgi.py's Request gives it: without one,
    `PUT {"runs_days": 30}` was answered 200 as an empty body. Past DATA_UPLOAD_MAX_MEMORY_SIZE it
    is refused as one with that Content-Length is."""

    def __init__(self, scope, body_file):
        super().__init__(scope, body_file)
        if "CONTENT_LENGTH" not in self.META:
            size = body_file.seek(0, os.SEEK_END)
            body_file.seek(0)
            if size:
                self.META["CONTENT_LENGTH"] = str(size)


class _Handler(ASGIHandler):
    request_class = _Request


telemetry_setup("web")  # before the middleware loads (foundry/telemetry.py)
django.setup(set_prefix=False)  # as get_asgi_application() does
django_application = _Handler()

from django.conf import settings  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

from foundry.mcp.gateway import McpGateway  # noqa: E402
from foundry.mcp.server import mcp  # noqa: E402

MCP_PATH = "/mcp"

_mcp_app = mcp.streamable_http_app(
    streamable_http_path=MCP_PATH,
    stateless_http=True,
    # The gateway checks Host and Origin against the workspaces (a static list cannot).
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)
mcp_application = McpGateway(_mcp_app)
if telemetry_enabled():
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    _HIDDEN = "foundry.hidden"  # (query string, headers) as the request came

    def _query_restored(app):
        async def restored(scope, receive, send):
            query, headers = scope[_HIDDEN]
            rest = {k: v for k, v in scope.items() if k != _HIDDEN}
            return await app({**rest, "query_string": query, "headers": headers}, receive, send)

        return restored

    # Not shown to the instrumentation: the caller's baggage, and its trace context unless callers
    # are trusted (FOUNDRY_TRACE_TRUST_CALLERS: a client's "sampled" flag would decide the sampling).
    _UNSEEN = frozenset(
        {b"baggage"} if settings.FOUNDRY_TRACE_TRUST_CALLERS else {b"baggage", b"traceparent", b"tracestate"}
    )

    def _query_hidden(app):
        """The ASGI instrumentation puts the whole URL on the span, query included (a client's
        `?access_token=`, an address), and takes the caller's `baggage` into the request's
        context, where this process's outgoing calls (a run's model and tool calls, sinks) would
        carry it on, and continues the caller's trace, sampled as the caller says. Django's server
        spans do none of it (foundry/telemetry.py): it sees the request without them, and the app
        below gets them back."""

        async def hidden(scope, receive, send):
            headers = scope.get("headers", [])
            seen = [(name, value) for name, value in headers if name.lower() not in _UNSEEN]
            original = (scope.get("query_string", b""), headers)
            return await app({**scope, "query_string": b"", "headers": seen, _HIDDEN: original}, receive, send)

        return hidden

    # /mcp is not Django's: a server span per MCP request from the ASGI instrumentation.
    mcp_application = _query_hidden(OpenTelemetryMiddleware(_query_restored(mcp_application)))


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    path = scope.get("path", "")
    if scope["type"] == "http" and (path == MCP_PATH or path == MCP_PATH + "/"):
        target = _plain_http_redirect if settings.SECURE_SSL_REDIRECT and not _secure(scope) else mcp_application
        return await _observed(target, {**scope, "path": MCP_PATH}, receive, send)
    return await django_application(scope, receive, send)


async def _plain_http_redirect(scope, receive, send) -> None:
    """/mcp over plain HTTP while FOUNDRY_SSL_REDIRECT is on: 308 to the same address over HTTPS
    (the method and body kept), as Django's SecurityMiddleware sends the console and the API
    there, before anything is read or authenticated."""
    from django.http.request import split_domain_port, validate_host

    from foundry.mcp.gateway import reply

    hosts = [value.decode("latin-1") for name, value in scope.get("headers") or () if name == b"host"]
    host = hosts[0] if len(hosts) == 1 else ""
    domain, _ = split_domain_port(host) if host.isprintable() else ("", "")
    # Only a host Django would serve (ALLOWED_HOSTS), as its own redirect of the console and API:
    # never a Location built from a host the client chose.
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return await reply(send, 400, "host_invalid", "The request names no host to send it to over HTTPS.")
    message = "This endpoint is served over HTTPS only."
    await reply(send, 308, "https_required", message, [(b"location", f"https://{host}{MCP_PATH}".encode("latin-1"))])


def _security_headers(scope, present: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The headers Django's middleware gives every other answer, for an /mcp answer: no sniffing,
    no framing, no referrer to other origins, a policy that lets the (JSON or event-stream)
    answer load nothing, and HSTS where configured and the request came over TLS
    (foundry/settings.py). Its Cache-Control is `_cache_control`'s."""
    from django.conf import settings

    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    ]
    if settings.SECURE_HSTS_SECONDS and _secure(scope):
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        headers.append((b"strict-transport-security", value.encode()))
    return [(name, value) for name, value in headers if name not in present]


def _cache_control(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with one Cache-Control, `no-store, private`: an answer holds the workspace's
    data. The SDK's own (`no-cache, no-transform` on an event stream) let a cache store it; its
    `no-transform` is kept (no proxy may buffer or re-encode a stream)."""
    sdk = b",".join(value for name, value in headers if name.lower() == b"cache-control").lower()
    value = b"no-store, private" + (b", no-transform" if b"no-transform" in sdk else b"")
    return [(name, v) for name, v in headers if name.lower() != b"cache-control"] + [(b"cache-control", value)]


def _secure(scope) -> bool:
    """Whether the request came over TLS: its own scheme, or the trusted proxy's header as
    Django's `request.is_secure()` reads it (SECURE_PROXY_SSL_HEADER)."""
    from django.conf import settings

    from foundry.proxies import proxy_trusted

    if scope.get("scheme") == "https":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    peer = (scope.get("client") or ("",))[0] or ""
    if not proxy or not proxy_trusted(peer, settings.FOUNDRY_TRUSTED_PROXIES):
        return False  # a client's word for https is not the proxy's (foundry/proxies.py)
    name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
    value = dict(scope.get("headers") or ()).get(name, b"").decode("latin-1")
    return value.split(",", 1)[0].strip() == proxy[1]


async def _observed(app, scope, receive, send) -> None:
    """/mcp observed as Django's requests are by their middleware: its request id (taken from a
    well-formed X-Request-ID, else made; bound for audit events and logs; returned), its
    security headers (`_security_headers`), and counted and timed in the request metrics under
    the route `mcp`."""
    from foundry.metrics import request_observe
    from foundry.request_context import HEADER, request_id_bound, request_id_for

    offered = dict(scope.get("headers") or ()).get(HEADER.lower().encode(), b"").decode("latin-1")
    request_id = request_id_for(offered, prefix="mcp-")  # `mcp-…` tells its audit events apart
    started, status = time.perf_counter(), 500

    async def send_observed(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = _cache_control(list(message.get("headers", [])))
            present = {name.lower() for name, _ in headers}
            headers += [*_security_headers(scope, present), (b"x-request-id", request_id.encode())]
            message = {**message, "headers": headers}
        await send(message)

    try:
        with request_id_bound(request_id):
            await app(scope, receive, send_observed)
    finally:
        request_observe("mcp", scope.get("method", ""), status, time.perf_counter() - started)


async def _lifespan(receive, send) -> None:
    async with contextlib.AsyncExitStack() as stack:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await stack.enter_async_context(mcp.session_manager.run())
                except Exception as exc:  # noqa: BLE001 — reported to the server, which stops
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


loaded_freeze()
