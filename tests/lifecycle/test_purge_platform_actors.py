"""docs/lifecycle.md, "Deleting a workspace": after the purge the tombstone names who asked by
pseudonymous id only; the platform chain's actor table keeps no name or email of the workspace's
members (`user:N@tenant:<id>`), which no erase_member could reach once the workspace is gone."""

from apps.audit.models import PLATFORM, AuditActor
from apps.audit.scope import rls_scope
from apps.lifecycle.deletion import tenant_purge
from apps.tenants.models import Tenant
from tests.conftest import client_for, tenant_user


def test_a_purge_leaves_no_email_of_the_workspaces_members_in_the_platform_actor_table(fresh_tenant, db, settings):
    settings.FOUNDRY_TENANT_DELETION_GRACE_DAYS = 0
    tenant = fresh_tenant
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    # The owner asks over the API, signed in (docs/lifecycle.md: the owners schedule it).
    asked = client_for(tenant, owner.email).post(
        "/api/v1/workspace/deletion", {"confirm": tenant.slug}, content_type="application/json"
    )
    assert asked.status_code == 202, asked.content
    tenant = Tenant.objects.get(pk=tenant.pk)
    with rls_scope(PLATFORM):
        named = AuditActor.objects.filter(tenant_id=PLATFORM, actor_id__endswith=f"@tenant:{tenant.pk}")
        assert named.filter(email=owner.email).exists()  # the request is on the platform chain

    tenant_purge(tenant=tenant, actor="operator:1")

    with rls_scope(PLATFORM):
        left = list(
            AuditActor.objects.filter(tenant_id=PLATFORM, actor_id__endswith=f"@tenant:{tenant.pk}")
            .exclude(email__isnull=True, display_name__isnull=True)
            .values_list("actor_id", "email", "display_name")
        )
    assert left == []
