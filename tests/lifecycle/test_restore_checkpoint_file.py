"""Signed audit checkpoints kept outside the database after a workspace's restore.

docs/audit.md: checkpoints are stored and, with FOUNDRY_AUDIT_CHECKPOINT_DIR set, "also appended
to `chain-<id>.jsonl`" — "only a checkpoint kept outside the database shows that the newest events
were cut off"; docs/operations/disaster-recovery.md has the directory copied off-site and says
a workspace's chain goes on from the restored events after `manage.py restore`."""

import io
import json

from django.core.management import call_command

from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.lifecycle.backup import backup_list, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from tests.lifecycle.test_backup import (
    unblocked,  # noqa: F401 — fixture
    workspace,  # noqa: F401 — fixture
)


def test_checkpoints_signed_after_a_restore_are_written_to_the_checkpoint_file(workspace, tmp_path, settings):  # noqa: F811
    """After a workspace is restored over its purge, its chain goes on from the backup's head,
    under sequence numbers the checkpoint file already holds (signed before the purge). A new
    checkpoint of the restored chain must still be appended to the file (one whose seq was not past
    the file's last line was skipped: nothing of the restored chain reached the file until it
    outgrew the pre-purge chain, and events cut from it meanwhile showed nowhere outside the
    database). Signing the same head again writes no second line."""
    settings.FOUNDRY_AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    backups = tmp_path / "backups"
    call_command("backup", tenant=workspace.slug, dir=backups, stdout=io.StringIO())
    (made,) = backup_list(backups, tenant_scope(workspace))
    for n in range(5):  # activity after the nightly backup, signed and copied off-site
        audit_record(action="thing.before_purge", actor="test", chain=workspace.pk, data={"n": n})
    assert audit_checkpoint_sign(workspace.pk) is not None

    tenant_deletion_schedule(tenant=workspace, actor="test", grace_days=0)
    tenant_purge(tenant=Tenant.objects.get(pk=workspace.pk), actor="test")  # the mistake
    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO(), stderr=io.StringIO())

    audit_record(action="thing.after_restore", actor="test", chain=workspace.pk)
    signed = audit_checkpoint_sign(workspace.pk)
    assert signed is not None
    lines = (tmp_path / "checkpoints" / f"chain-{workspace.pk}.jsonl").read_text().splitlines()
    kept = [json.loads(line) for line in lines if line.strip()]
    assert any(entry.get("hash") == signed.hash for entry in kept), (
        f"checkpoint #{signed.seq} of the restored chain was not written to the checkpoint file "
        f"(its last line is #{kept[-1].get('seq')}, signed before the purge)"
    )
    assert audit_checkpoint_sign(workspace.pk) is None  # the head is signed: the later pass finds it written
    again = (tmp_path / "checkpoints" / f"chain-{workspace.pk}.jsonl").read_text().splitlines()
    assert again == lines
