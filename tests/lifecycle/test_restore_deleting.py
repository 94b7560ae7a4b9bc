"""Restoring a purged workspace from its backup (docs/operations/disaster-recovery.md)."""

import io

from django.core.management import call_command

from apps.lifecycle.backup import backup_list, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge, tenants_due
from apps.lifecycle.tasks import purge_due
from apps.tenants.models import Tenant
from tests.lifecycle.test_backup import (
    unblocked,  # noqa: F401 — fixture
    workspace,  # noqa: F401 — fixture
)


def test_a_workspace_restored_after_a_mistaken_purge_is_not_purged_again_by_the_hourly_job(workspace, tmp_path):  # noqa: F811
    """A backup taken during the grace period holds the workspace as `deleting`, due to be purged:
    restored, it comes back suspended with its deletion cancelled, and the hourly purge leaves it."""
    tenant_deletion_schedule(tenant=workspace, actor="test", grace_days=0)
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    tenant_purge(tenant=Tenant.objects.get(pk=workspace.pk), actor="test")  # the mistake
    assert not Tenant.objects.filter(pk=workspace.pk).exists()

    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    restored = Tenant.objects.get(pk=workspace.pk)
    assert restored.pk not in [t.pk for t in tenants_due()], (restored.status, restored.purge_after)
    purge_due()  # the next hourly beat run
    assert Tenant.objects.filter(pk=workspace.pk).exists(), "the restored workspace was purged again"
