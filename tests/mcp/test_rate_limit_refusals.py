"""/mcp spends the caller's rate on every authenticated request, refusals included (docs/limits.md)."""

import json

import anyio
import pytest
from django.core.management import call_command

from apps.tenants.limits import limits_cache_clear, refusals_forget
from tests.mcp.conftest import tokens  # noqa: F401 -- fixture


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    refusals_forget()
    yield
    limits_cache_clear()
    refusals_forget()


def limit(slug: str, *, rps: int = 1, burst: int) -> None:
    call_command("tenant_limits", slug, "--requests-per-second", str(rps), "--burst", str(burst))


def mcp_post(tenant, token: str, body: bytes, content_type: bytes) -> tuple[int, dict[str, str]]:
    """One POST through the real MCP gateway, in this process (the SDK app behind it stubbed)."""
    from foundry.mcp.gateway import McpGateway

    async def app(scope, receive, send):
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
                (b"host", f"{tenant.slug}.localhost".encode()),
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-type", content_type),
            ],
        }
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await McpGateway(app)(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}

    return anyio.run(call)


def test_an_authenticated_mcp_request_refused_415_spends_its_rate(fresh_tenant, tokens, django_db_blocker):  # noqa: F811
    """docs/limits.md: "Each authenticated request to /api/, /mcp or /git/ ... spends one unit" and
    "Every counted response carries the headers", as the API counts an authenticated 415. The
    gateway used to authenticate the token (a database look-up, or a JWT check) and answer 415
    spending nothing and without the headers: unlimited authenticated requests."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    with django_db_blocker.unblock():
        limit(fresh_tenant.slug, burst=4)  # the token's half: a burst of 2
        first = mcp_post(fresh_tenant, tokens["admin"], body, b"text/plain")
        second = mcp_post(fresh_tenant, tokens["admin"], body, b"text/plain")
        third = mcp_post(fresh_tenant, tokens["admin"], body, b"application/json")
    assert [first[0], second[0]] == [415, 415]
    assert "ratelimit" in first[1]  # a counted response carries the headers
    assert third[0] == 429  # the token's burst of 2 was spent by the two 415s
