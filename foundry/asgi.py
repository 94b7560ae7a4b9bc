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

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")

from foundry.process import loaded_freeze
from foundry.telemetry import telemetry_enabled, telemetry_setup

telemetry_setup("web")  # before the middleware loads (foundry/telemetry.py)
django_application = get_asgi_application()

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

    # /mcp is not Django's: a server span per MCP request from the ASGI instrumentation.
    mcp_application = OpenTelemetryMiddleware(mcp_application)


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    path = scope.get("path", "")
    if scope["type"] == "http" and (path == MCP_PATH or path == MCP_PATH + "/"):
        return await _observed(mcp_application, {**scope, "path": MCP_PATH}, receive, send)
    return await django_application(scope, receive, send)


async def _observed(app, scope, receive, send) -> None:
    """/mcp observed as Django's requests are by their middleware: its request id (taken from a
    well-formed X-Request-ID, else made; bound for audit events and logs; returned), and counted
    and timed in the request metrics under the route `mcp`."""
    from foundry.metrics import request_observe
    from foundry.request_context import HEADER, request_id_bound, request_id_for

    offered = dict(scope.get("headers") or ()).get(HEADER.lower().encode(), b"").decode("latin-1")
    request_id = request_id_for(offered, prefix="mcp-")  # `mcp-…` tells its audit events apart
    started, status = time.perf_counter(), 500

    async def send_observed(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
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
