"""A backup that cannot be written (the disk fills up) fails as a recorded, named failure."""

import io
import resource
import subprocess
import sys
import tarfile

from django.core.management import call_command

from apps.lifecycle.backup import backup_list, tenant_scope
from tests.conftest import ROOT, audit_events, server_env
from tests.lifecycle.test_backup import unblocked, workspace, workspace_create  # noqa: F401 — fixtures


def test_a_backup_that_runs_out_of_space_is_recorded_as_failed_not_a_traceback(workspace, tmp_path):  # noqa: F811
    """docs/operations/disaster-recovery.md: "Every backup (the job's and the command's) is recorded in
    the platform's audit chain: ... a failure as `lifecycle.backup.failed`", and a crash leaves no
    file that looks complete. When writing the backup file itself fails (ENOSPC/EFBIG: the disk
    filled up after pg_dump finished; simulated with RLIMIT_FSIZE so the tar write fails, pg_dump
    not), `manage.py backup` dies with an OSError traceback and no `lifecycle.backup.failed` event
    is written: backup_create/_backup_run only catch BackupError."""
    first = tmp_path / "first"
    call_command("backup", tenant=workspace.slug, dir=first, stdout=io.StringIO())
    (made,) = backup_list(first, tenant_scope(workspace))
    with tarfile.open(made) as tar:
        dump_size = tar.getmember("schema.dump").size
    assert made.stat().st_size > dump_size + 4096
    limit = dump_size + 2048  # pg_dump's schema.dump fits; the tar holding it (and the rest) does not

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    directory = tmp_path / "full"
    failed_before = len(audit_events("public", action="lifecycle.backup.failed"))
    done = subprocess.run(
        [sys.executable, "manage.py", "backup", "--tenant", workspace.slug, "--dir", str(directory)],
        env=server_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_disk,
    )
    assert done.returncode != 0, done.stdout
    assert not backup_list(directory, tenant_scope(workspace)), "a backup file was left"
    assert len(audit_events("public", action="lifecycle.backup.failed")) == failed_before + 1, (
        "the failed backup was not recorded as lifecycle.backup.failed"
    )
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
