"""The MCP gateway spends one unit of the credential's and the tenant's rates per HTTP request."""

import json
import time

import anyio
import httpx2
from django.core.management import call_command

from tests.mcp.conftest import mcp_url

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


def post(port: int, slug: str, token: str) -> httpx2.Response:
    headers = {**HEADERS, "Host": f"{slug}.localhost:{port}", "Authorization": f"Bearer {token}"}
    return httpx2.post(mcp_url(port), json=LIST, headers=headers, timeout=10)


def test_it_refuses_after_the_burst_with_429_and_headers(mcp_port, fresh_tenant, tokens, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("tenant_limits", fresh_tenant.slug, "--requests-per-second", "1", "--burst", "4")
    first = post(mcp_port, fresh_tenant.slug, tokens["admin"])
    assert first.status_code != 429
    assert first.headers["RateLimit-Policy"] == '"default";q=1;w=2'  # a credential's half: 1 every 2 s
    refused = [post(mcp_port, fresh_tenant.slug, tokens["admin"]) for _ in range(2)][-1]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["RateLimit"].startswith('"default";r=0;t=')
    # Another credential of the tenant still has its own half of the burst.
    assert post(mcp_port, fresh_tenant.slug, tokens["viewer"]).status_code != 429


def gateway_post(slug: str, token: str, body: bytes, content_type: bytes = b"application/json", app=None):
    """One POST through the real MCP gateway, in this process (`app`: the SDK's app behind it, a
    stub answering 200 `{}` by default): (status, headers, the JSON body answered)."""
    from foundry.mcp.gateway import McpGateway

    async def stub(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def call():
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "raw_path": b"/mcp",
            "root_path": "",
            "scheme": "http",
            "query_string": b"",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 50000),
            "headers": [
                (b"host", f"{slug}.localhost".encode()),
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-type", content_type),
            ],
        }
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await McpGateway(app or stub)(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, json.loads(payload or b"{}")

    return anyio.run(call)


def test_with_the_limiter_unreachable_reads_pass_and_tool_calls_are_refused(
    fresh_tenant, tokens, settings, django_db_blocker
):
    """The gateway itself, in this process, with the limiter on a closed port: a tools/list is
    answered (the bounded local fallback), a tools/call gets 503 at once — never a 500 or a hang."""
    from tests.conftest import free_port

    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    reached = []

    async def app(scope, receive, send):
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def call(method: str) -> tuple[int, dict]:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).encode()
        status, _headers, answer = gateway_post(fresh_tenant.slug, tokens["admin"], body, app=app)
        return status, answer

    started = time.monotonic()
    with django_db_blocker.unblock():
        status, _ = call("tools/list")
        assert status == 200 and len(reached) == 1  # the body reached the SDK's app intact
        assert json.loads(reached[0])["method"] == "tools/list"
        status, body = call("tools/call")
    assert (status, body["error"]["code"]) == (503, "rate_limiter_unavailable")
    assert len(reached) == 1 and time.monotonic() - started < 5


def test_an_authenticated_mcp_request_refused_415_spends_its_rate(fresh_tenant, tokens, django_db_blocker):
    """docs/limits.md: "Each authenticated request to /api/, /mcp or /git/ ... spends one unit" and
    "Every counted response carries the headers", as the API counts an authenticated 415. The
    gateway used to authenticate the token (a database look-up, or a JWT check) and answer 415
    spending nothing and without the headers: unlimited authenticated requests."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    with django_db_blocker.unblock():
        call_command("tenant_limits", fresh_tenant.slug, "--requests-per-second", "1", "--burst", "4")  # a token: 2
        first = gateway_post(fresh_tenant.slug, tokens["admin"], body, b"text/plain")
        second = gateway_post(fresh_tenant.slug, tokens["admin"], body, b"text/plain")
        third = gateway_post(fresh_tenant.slug, tokens["admin"], body)
    assert [first[0], second[0]] == [415, 415]
    assert "ratelimit" in first[1]  # a counted response carries the headers
    assert third[0] == 429  # the token's burst of 2 was spent by the two 415s
