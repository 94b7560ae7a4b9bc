"""A workspace whose audit trail is on legal hold is neither scheduled for deletion nor purged
(apps/lifecycle/deletion.py `_refuse_legal_hold`): a purge erases the trail the hold keeps, and
both went ahead whatever the hold said. Its owners lift the hold first, an audited change."""

import pytest
from django_tenants.utils import schema_context

from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.lifecycle.models import RetentionPolicy
from apps.tenants.models import Tenant
from foundry.errors import ServiceError
from tests.api.conftest import api, issue

OPERATOR = "operator:1"


def _hold(tenant: Tenant, held: bool) -> None:
    with schema_context(tenant.schema_name):
        RetentionPolicy.objects.update_or_create(pk=1, defaults={"audit_legal_hold": held})


def _platform_events(tenant: Tenant, action: str) -> int:
    with rls_scope(PLATFORM):
        return AuditEvent.objects.filter(tenant_id=PLATFORM, action=action, target_id=str(tenant.pk)).count()


def test_a_held_workspace_is_not_scheduled_for_deletion_by_its_owners_or_an_operator(fresh_tenant, db, globex):
    _hold(fresh_tenant, True)
    _hold(globex, False)  # another workspace's hold is not this one's
    owner = api(fresh_tenant, issue(fresh_tenant, role="owner"))
    refused = owner.post("/api/v1/workspace/deletion", {"confirm": fresh_tenant.slug}, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "legal_hold")
    with pytest.raises(ServiceError) as operator:
        tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
    assert operator.value.code == "legal_hold"
    fresh_tenant.refresh_from_db()
    assert fresh_tenant.status == Tenant.Status.ACTIVE and fresh_tenant.purge_after is None
    assert _platform_events(fresh_tenant, "tenant.deletion_scheduled") == 0

    _hold(fresh_tenant, False)  # lifted: scheduled as usual
    assert tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0).status == Tenant.Status.DELETING


def test_a_hold_set_after_the_deletion_was_scheduled_stops_the_purge(fresh_tenant, db):
    tenant = tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
    _hold(tenant, True)
    with pytest.raises(ServiceError) as refused:
        tenant_purge(tenant=tenant, actor=OPERATOR)
    assert (refused.value.code, refused.value.status) == ("legal_hold", 409)
    assert Tenant.objects.filter(pk=tenant.pk, status=Tenant.Status.DELETING).exists()
    assert _platform_events(tenant, "tenant.purged") == 0
    with schema_context(tenant.schema_name):
        assert RetentionPolicy.objects.get(pk=1).audit_legal_hold


def test_the_hourly_purge_logs_a_held_workspaces_refusal_as_a_warning_not_a_traceback(fresh_tenant, db, caplog):
    """The beat's pass meets the refusal every hour until the hold is lifted: a warning naming
    the code, not an error with a traceback each time."""
    from apps.lifecycle.tasks import purge_due

    tenant = tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
    _hold(tenant, True)
    with caplog.at_level("WARNING", logger="apps.lifecycle.tasks"):
        assert purge_due() == 0
    (record,) = [r for r in caplog.records if tenant.slug in r.getMessage()]
    assert record.levelname == "WARNING" and "legal_hold" in record.getMessage() and record.exc_info is None
