"""Cancelling the deletion of a suspended workspace on the operator console."""

from apps.lifecycle.deletion import tenant_deletion_schedule
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_suspend


def test_the_console_does_not_say_a_still_suspended_workspace_is_active_again(fresh_tenant, db, operator_client):
    """The message says the status the workspace is back in: still suspended, if an operator had
    suspended it before its deletion was scheduled (docs/lifecycle.md)."""
    tenant_suspend(tenant=fresh_tenant, actor="test")
    tenant_deletion_schedule(tenant=fresh_tenant, actor="test", grace_days=5)
    response = operator_client.post(f"/tenants/{fresh_tenant.slug}/delete/cancel/", follow=True)
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.SUSPENDED
    assert b"active again" not in response.content
