"""A workspace restore (`manage.py restore FILE`) is several commits: pg_restore's schema, the
migration, the public rows, then the erasures made since the backup, made again. A restore
process that dies between them (killed, out of memory, a lost SSH session) left, before:
- after pg_restore, a schema with no workspace row that nothing removed: the restore run again was
  refused ("schema exists already"), and the slug could not be provisioned;
- after the rows, the workspace active with a person erased since the backup back in it, and
  nothing to make the erasure again.
Now the platform's trail records that a restore began (`lifecycle.backup.restore_started`), a
restore run again drops the schema such a restore left, the workspace is restored suspended
while erasures are owed, and resuming it makes them again first (found by the partial-failure
review)."""

import io
import os
import signal
import subprocess
import sys
import tempfile
import time

import psycopg
from django.core.management import call_command
from django.db import connection

from apps.lifecycle.backup import _dump_contents_check, _extracted, backup_list, backup_open, tenant_scope
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_resume
from tests.conftest import ROOT, server_env
from tests.lifecycle.test_backup import (  # noqa: F401 — fixtures
    manage,
    unblocked,
    workspace,
    workspace_create,
    workspace_lose,
)


def _superuser():
    return psycopg.connect(
        os.environ["FOUNDRY_TEST_PG_SUPERUSER"].replace("dbname=postgres", f"dbname={connection.settings_dict['NAME']}")
    )


def _schema_present(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def _restore_started(made) -> subprocess.Popen:
    """`manage.py restore` of the file, in a process group of its own (to be killed whole)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "restore", str(made)],
        env=server_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _killed_once_waiting(proc: subprocess.Popen, blocker, waiting: str, what: str) -> None:
    """SIGKILL the restore once it waits as `waiting` (a query of pg_locks) finds; `blocker`, the
    session holding what it waits for, then lets go."""
    try:
        deadline = time.monotonic() + 120
        with _superuser() as watch:
            while not watch.execute(waiting).fetchone():
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, f"the restore never reached {what}"
                time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # the process dies
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        blocker.rollback()
        blocker.close()


def test_a_restore_killed_after_pg_restore_can_be_run_again(workspace, tmp_path):  # noqa: F811
    """Killed while it waits to load the public rows: the schema is left, with no workspace."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    workspace_lose(workspace)

    # Real lock from another session: the restore's public-rows step waits on tenants_domain.
    blocker = _superuser()
    blocker.execute("LOCK TABLE public.tenants_domain IN ACCESS EXCLUSIVE MODE")
    # The restore's public-rows step waits on tenants_domain: after pg_restore and migrate.
    waiting = (
        "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE c.relname = 'tenants_domain' AND NOT l.granted"
    )
    _killed_once_waiting(_restore_started(made), blocker, waiting, "the public rows")

    assert not Tenant.objects.filter(pk=workspace.pk).exists()
    left_over = _schema_present(workspace.schema_name)
    again = manage("restore", str(made))
    try:
        assert again.returncode == 0, (
            f"schema left over: {left_over}; the second restore: {again.stderr.strip()[-600:]}"
        )
        assert Tenant.objects.filter(pk=workspace.pk, slug=workspace.slug).exists()
    finally:
        if not Tenant.objects.filter(pk=workspace.pk).exists():  # the orphan, out of later tests' way
            with _superuser() as su:
                su.execute(f'DROP SCHEMA IF EXISTS "{workspace.schema_name}" CASCADE')


def test_a_restore_killed_before_it_reapplies_erasures_does_not_leave_the_erased_person_served(
    workspace,  # noqa: F811
    tmp_path,
):
    """Killed while the re-made erasure waits for the workspace's export lock: the workspace is
    suspended, and resuming it makes the erasure again."""
    from django_tenants.utils import schema_context

    from apps.accounts.models import User

    erased_email = f"viewer@{workspace.slug}.test"
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    done = manage("erase_member", workspace.slug, erased_email)  # a data-subject request after the backup
    assert done.returncode == 0, done.stderr[-1500:]
    workspace_lose(workspace)

    blocker = _superuser()  # the re-made erasure takes this lock first (exports_held)
    blocker.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"lifecycle.export:{workspace.schema_name}"])
    waiting = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    _killed_once_waiting(_restore_started(made), blocker, waiting, "the erasures")

    restored = Tenant.objects.get(pk=workspace.pk)
    again = manage("restore", str(made))
    with schema_context(workspace.schema_name):
        back = User.objects.filter(email=erased_email).exists()
    assert not (back and restored.is_active), (
        f"the erased {erased_email} is back in live workspace {restored.slug} (status {restored.status});"
        f" a second restore: {again.stderr.strip()[-300:]}"
    )
    assert restored.status == Tenant.Status.SUSPENDED and back
    tenant_resume(tenant=restored, actor="test")
    with schema_context(workspace.schema_name):
        assert not User.objects.filter(email=erased_email).exists()
    assert Tenant.objects.get(pk=workspace.pk).status == Tenant.Status.ACTIVE


def test_a_second_restore_of_a_workspace_under_way_is_refused(workspace, tmp_path):  # noqa: F811
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    workspace_lose(workspace)
    with _superuser() as first:  # the lock a restore under way holds
        first.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"foundry:restore:{workspace.pk}"])
        refused = manage("restore", str(made))
    assert refused.returncode != 0 and "is under way" in refused.stderr, refused.stderr[-500:]
    assert not _schema_present(workspace.schema_name)
    assert manage("restore", str(made)).returncode == 0
    assert Tenant.objects.get(pk=workspace.pk).status == Tenant.Status.ACTIVE


def test_the_dump_pg_restore_reads_has_no_name_on_disk(workspace, tmp_path, monkeypatch):  # noqa: F811
    """The schema's dump is extracted for pg_restore to a file without a name: a restore killed
    while pg_restore reads it leaves nothing of the workspace's data in the temporary directory
    (a named one was only removed when the restore ended). pg_restore reads it all the same."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path / "backups", stdout=io.StringIO())
    (made,) = backup_list(tmp_path / "backups", tenant_scope(workspace))
    backup = backup_open(made)
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    with _extracted(backup, "schema.dump") as dump:
        assert list(work.iterdir()) == []
        _dump_contents_check(backup, dump)  # pg_restore --list, through the descriptor it inherits
