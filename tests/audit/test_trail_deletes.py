"""SQL run as the app role (say, injected) sets the erasing gate and another tenant's scope itself
and tries to cut that tenant's chain: its tail (with the head, `audit_verify` would then see
nothing), or all of it. The app role holds no DELETE on the trail; only the owner's functions
delete (audit migrations/0008), and the purge only a workspace scheduled for deletion — as the
platform chain records it, past its grace period (migrations/0009)."""

import pytest
from django.db import DatabaseError, connection, transaction

from foundry.db.roles import owner_role

pytestmark = pytest.mark.skipif(owner_role() is None, reason="one database role")

SCOPE = "SELECT set_config('foundry.tenant_id', %s, true), set_config('foundry.erasing', 'on', true)"


def rows_deleted(tenant_id: int, statement: str) -> int:
    """Rows `statement` deleted in a savepoint under a hand-set erasing scope; -1 if refused."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(SCOPE, [str(tenant_id)])
            cursor.execute(statement, [tenant_id])
            return cursor.rowcount
    except DatabaseError:
        return -1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM public.audit_auditevent WHERE tenant_id = %s"
        " AND seq = (SELECT max(seq) FROM public.audit_auditevent)",
        "DELETE FROM public.audit_auditevent WHERE tenant_id = %s",
    ],
)
def test_sql_as_the_app_role_cannot_delete_a_tenants_audit_events(globex, statement):
    with connection.cursor() as cursor:
        cursor.execute(SCOPE, [str(globex.pk)])
        cursor.execute("SELECT count(*) FROM public.audit_auditevent")
        assert cursor.fetchone()[0] > 0  # globex's provisioning recorded events
        cursor.execute(SCOPE.replace("'on'", "''"), [""])
    n = rows_deleted(globex.pk, statement)
    assert n <= 0, f"the app role deleted {n} of globex's audit events by setting foundry.erasing itself"


@pytest.mark.django_db
def test_the_owners_purge_refuses_a_workspace_not_scheduled_for_deletion(globex):
    refused = pytest.raises(DatabaseError, match="purged only with the workspace")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM public.audit_chain_purge(%s)", [globex.pk])
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(globex.pk)])
        cursor.execute("SELECT count(*) FROM public.audit_auditevent")
        assert cursor.fetchone()[0] > 0


def _purge(tenant_id: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM public.audit_chain_purge(%s)", [tenant_id])


def _events(tenant_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(tenant_id)])
        cursor.execute("SELECT count(*) FROM public.audit_auditevent")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_owners_purge_refuses_a_workspace_marked_for_deletion_by_sql_alone(globex):
    """The status is the app role's to write: set by hand, with no scheduling on the platform
    chain, it opens nothing."""
    from apps.tenants.models import Tenant

    Tenant.objects.filter(pk=globex.pk).update(status=Tenant.Status.DELETING)
    with pytest.raises(DatabaseError, match="platform audit trail records its deletion scheduled"):
        _purge(globex.pk)
    assert _events(globex.pk) > 0


@pytest.mark.django_db
def test_the_owners_purge_waits_for_the_grace_period_the_platform_chain_records(globex):
    from apps.lifecycle.deletion import tenant_deletion_schedule

    tenant_deletion_schedule(tenant=globex, actor="operator:test", grace_days=1)
    with pytest.raises(DatabaseError, match="grace period over"):
        _purge(globex.pk)
    assert _events(globex.pk) > 0


@pytest.mark.django_db
def test_the_owners_purge_refuses_a_deletion_cancelled_since(globex):
    """Scheduled with no grace period, cancelled, then marked for deletion again by SQL alone:
    the platform chain's last word on the workspace is the cancellation."""
    from apps.lifecycle.deletion import tenant_deletion_cancel, tenant_deletion_schedule
    from apps.tenants.models import Tenant

    tenant_deletion_schedule(tenant=globex, actor="operator:test", grace_days=0)
    tenant_deletion_cancel(tenant=globex, actor="operator:test")
    Tenant.objects.filter(pk=globex.pk).update(status=Tenant.Status.DELETING)
    with pytest.raises(DatabaseError, match="platform audit trail records its deletion scheduled"):
        _purge(globex.pk)
    assert _events(globex.pk) > 0


@pytest.mark.django_db
def test_the_owners_purge_takes_a_chain_scheduled_for_deletion_and_due(globex):
    from apps.lifecycle.deletion import tenant_deletion_schedule

    tenant_deletion_schedule(tenant=globex, actor="operator:test", grace_days=0)
    _purge(globex.pk)
    assert _events(globex.pk) == 0


@pytest.mark.django_db
def test_the_owners_prune_keeps_a_chain_without_a_signed_checkpoint_whole(globex):
    """Asked to prune everything, it deletes only up to a signed checkpoint: globex has none."""
    from datetime import UTC, datetime, timedelta

    with connection.cursor() as cursor:
        cursor.execute("SELECT public.audit_chain_prune(%s, %s)", [globex.pk, datetime.now(UTC) + timedelta(days=1)])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(globex.pk)])
        cursor.execute("SELECT count(*) FROM public.audit_auditevent")
        assert cursor.fetchone()[0] > 0
