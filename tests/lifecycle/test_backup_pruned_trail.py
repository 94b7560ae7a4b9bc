"""A workspace whose audit trail retention pruned, backed up, lost and restored: its public rows load
as the tables' owner, the only role the events' policy lets write `audit.pruned`."""

import io
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_prune, audit_record
from apps.audit.verify import audit_verify
from apps.lifecycle.backup import backup_list, tenant_scope
from apps.tenants.models import Tenant
from tests.audit.conftest import SIGNING_SEED, chain_age
from tests.lifecycle.test_backup import unblocked, workspace, workspace_lose  # noqa: F401 - fixtures


def test_a_workspace_whose_trail_retention_pruned_is_restored_from_its_backup(workspace, settings, tmp_path):  # noqa: F811
    """docs/operations/disaster-recovery.md: "One workspace lost (say, purged by mistake) — minutes:
    `manage.py restore` of its backup". docs/retention.md: `audit_days` prunes the trail, appending
    `audit.pruned`. A workspace with an audit retention period set has such an event in its backup;
    its restore must bring it back (the trail verifying), not fail on the events' RLS policy."""
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    for number in range(5):
        audit_record(action="thing.done", actor="test", chain=workspace.pk, data={"n": number})
    chain_age(workspace.pk, 10)
    assert audit_checkpoint_sign(workspace.pk) is not None
    audit_record(action="thing.after", actor="test", chain=workspace.pk)
    assert audit_prune(tenant_id=workspace.pk, before=timezone.now() - timedelta(days=2)) > 0
    assert audit_verify(workspace.pk).ok

    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    workspace_lose(workspace)

    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    assert Tenant.objects.filter(pk=workspace.pk).exists()
    with rls_scope(workspace.pk):
        assert AuditEvent.objects.filter(tenant_id=workspace.pk, action="audit.pruned").exists()
    assert audit_verify(workspace.pk).ok
