"""The MCP gateway spends one unit of the credential's and the tenant's rates per HTTP request."""

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
    assert first.headers["RateLimit-Policy"] == '"default";q=1;w=1'
    refused = [post(mcp_port, fresh_tenant.slug, tokens["admin"]) for _ in range(2)][-1]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit"].startswith('"default";r=0;t=')
    # Another credential of the tenant still has its own half of the burst.
    assert post(mcp_port, fresh_tenant.slug, tokens["viewer"]).status_code != 429
