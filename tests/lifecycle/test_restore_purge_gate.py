"""The purge gate (audit migrations/0009_purge_gate.py) after a restore: a workspace restored from
a backup taken during its grace period comes back suspended, its deletion cancelled by the
restore (recorded as `lifecycle.backup.restored` on the platform chain). That event counts as
the platform chain's last word on the workspace, as a cancellation does: SQL run as the app role
that sets the status back to `deleting` opens nothing, the chain stays whole."""

import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.lifecycle.backup import backup_list, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from foundry.db.roles import owner_role
from tests.lifecycle.test_backup import (
    unblocked,  # noqa: F401 — fixture
    workspace,  # noqa: F401 — fixture
)

pytestmark = pytest.mark.skipif(owner_role() is None, reason="one database role")


def _events(tenant_id: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(tenant_id)])
        cursor.execute("SELECT count(*) FROM public.audit_auditevent")
        return cursor.fetchone()[0]


def test_a_restored_workspace_marked_deleting_by_sql_alone_keeps_its_audit_chain(workspace, tmp_path):  # noqa: F811
    tenant_deletion_schedule(tenant=workspace, actor="test", grace_days=0)
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    tenant_purge(tenant=Tenant.objects.get(pk=workspace.pk), actor="test")
    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    restored = Tenant.objects.get(pk=workspace.pk)
    assert restored.status == Tenant.Status.SUSPENDED  # its deletion cancelled by the restore
    before = _events(workspace.pk)
    assert before > 0

    # Injected SQL as the app role: the status alone, no scheduling appended to the platform chain.
    Tenant.objects.filter(pk=workspace.pk).update(status=Tenant.Status.DELETING)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM public.audit_chain_purge(%s)", [workspace.pk])
    except DatabaseError:
        pass  # refused, as for any other workspace marked deleting by SQL alone
    assert _events(workspace.pk) == before, "the owner's purge erased a restored workspace's chain on the status alone"


def test_a_workspace_restored_after_its_purge_appends_to_its_chain_again(workspace, tmp_path):  # noqa: F811
    """A purged workspace's chain takes no more events (audit migrations/0017) until a restore
    brings the workspace back: then its chain goes on from the restored events."""
    from apps.audit.services import audit_record
    from apps.audit.verify import audit_verify

    tenant_deletion_schedule(tenant=workspace, actor="test", grace_days=0)
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    tenant_purge(tenant=Tenant.objects.get(pk=workspace.pk), actor="test")
    with pytest.raises(DatabaseError, match="was purged"), transaction.atomic():
        audit_record(action="thing.after_purge", actor="test", chain=workspace.pk)
    assert _events(workspace.pk) == 0

    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    before = _events(workspace.pk)
    appended = audit_record(action="thing.after_restore", actor="test", chain=workspace.pk)
    assert appended.seq == before + 1
    assert audit_verify(workspace.pk).ok
