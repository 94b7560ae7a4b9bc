"""What a suspended workspace still answers (docs/lifecycle.md, docs/tenancy.md, README.md)."""

import httpx2
from django_tenants.utils import schema_context

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_suspend
from apps.tokens.services import token_issue
from tests.mcp.conftest import mcp_url


def test_mcp_of_a_suspended_workspace_answers_403_tenant_suspended(mcp_port, fresh_tenant, django_db_blocker):
    with django_db_blocker.unblock():
        with schema_context(fresh_tenant.schema_name):
            token = token_issue(actor="test", name="t", role="owner", scopes=["read"]).plaintext
        tenant_suspend(tenant=Tenant.objects.get(pk=fresh_tenant.pk))
    response = httpx2.post(
        mcp_url(mcp_port),
        content='{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
        headers={
            "Host": f"{fresh_tenant.slug}.localhost:{mcp_port}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        },
        timeout=30,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "tenant_suspended")
