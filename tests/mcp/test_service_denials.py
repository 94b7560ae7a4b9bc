"""MCP: a refusal by a service's own rule (Django's PermissionDenied raised inside a tool's
work) is answered `forbidden` and recorded as one `access.denied` event, as the API and the
console record theirs (docs/audit.md: "console, API, MCP, git").

The tool body stands in for a service that refuses; it runs in a worker thread on its own
connection, as in production, so the event is committed; the test counts the events it added.
"""

import asyncio
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from mcp.server.mcpserver.exceptions import ToolError

from apps.accounts.permissions import Permission
from apps.tokens.models import ApiToken, Scope, TokenPrincipal
from foundry.mcp.context import run_tool
from tests.audit.watch import Watch, describe


def _ctx(tenant, principal):
    request = RequestFactory().post("/mcp", HTTP_HOST=f"{tenant.slug}.localhost", REMOTE_ADDR="127.0.0.9")
    request.tenant = tenant
    request.user = principal
    scope = {"foundry.tenant": tenant, "foundry.principal": principal, "foundry.request": request}
    return SimpleNamespace(request_context=SimpleNamespace(request=SimpleNamespace(scope=scope))), request


def test_a_service_refusal_inside_an_mcp_tool_is_audited_as_access_denied(acme):
    token = ApiToken(prefix="rvmcpdenied1", name="rv-mcp", role="admin", scopes=["read", "write", "run", "admin"])
    principal = TokenPrincipal(token)
    ctx, request = _ctx(acme, principal)

    def work(principal, request):
        raise PermissionDenied("Only owners issue owner tokens.")  # a service's own rule

    watch = Watch("acme")
    with pytest.raises(ToolError) as refused:
        asyncio.run(run_tool(ctx, "deploy_agent", Permission.AGENTS_VIEW, Scope.READ, work))
    assert "forbidden" in str(refused.value)

    new = watch.new("acme")
    denied = [e for e in new if e.action == "access.denied"]
    assert len(denied) == 1, f"expected one access.denied event for the MCP refusal, got {describe(new)}"
    (event,) = denied
    assert event.actor_id == "token:rvmcpdenied1"
    assert event.outcome == "denied"
    assert event.data.get("via") == "mcp"
    assert event.request_id == request.request_id
