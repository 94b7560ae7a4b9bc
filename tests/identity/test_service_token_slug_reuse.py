"""A purged workspace's slug is free again (docs/lifecycle.md), and a new workspace provisioned
under it gets the same schema name and host. A platform service token names its workspace's id
as well as its schema, so one issued for the purged workspace does not open the new one."""

from apps.identity.service_tokens import service_token_issue
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_provision
from tests.api.conftest import api
from tests.conftest import PASSWORD


def test_a_service_token_of_a_purged_workspace_does_not_open_the_next_workspace_with_its_slug(db):
    """Issued for the old workspace (up to 15 minutes' life, e.g. a member's MCP stdio bridge),
    refused by the new one with the same slug: 401 `token_tenant_invalid`."""
    old = tenant_provision(slug="reused", name="Old Co", owner_email="owner@old.test", owner_password=PASSWORD).tenant
    token = service_token_issue(tenant_schema=old.schema_name, service="mcp-bridge", role="admin", scopes=("read",))
    assert api(old, token).get("/api/v1/members").status_code == 200

    tenant_purge(tenant=tenant_deletion_schedule(tenant=old, actor="operator:1", grace_days=0), actor="operator:1")
    assert not Tenant.objects.filter(pk=old.pk).exists()
    new = tenant_provision(
        slug="reused", name="New Customer", owner_email="boss@new.test", owner_password=PASSWORD
    ).tenant
    assert new.pk != old.pk and new.schema_name == old.schema_name

    response = api(new, token).get("/api/v1/members")
    assert response.status_code == 401, response.content[:200]
    assert response.json()["error"]["code"] == "token_tenant_invalid"
