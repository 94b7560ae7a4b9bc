"""The daily beat job `lifecycle.backup` dumps the whole database (every workspace) in one
pg_dump; the hourly `lifecycle.purge_due` purges workspaces whose grace period ended. One
workspace's purge under way does not make every other workspace's nightly backup fail, and no
purge starts while the dump runs."""

import threading
import time
import uuid

import pytest
from django.db import connections

from apps.lifecycle import deletion
from apps.lifecycle import tasks as lifecycle_tasks
from apps.lifecycle.deletion import tenant_deletion_schedule
from apps.tenants.services import tenant_provision
from tests.audit.test_sign_heads_isolation import superuser_connection
from tests.conftest import PASSWORD
from tests.lifecycle.test_backup import backup_role_url  # noqa: F401 — a fixture


@pytest.fixture
def unblocked(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


def test_a_workspace_being_purged_does_not_make_the_whole_database_backup_fail(
    unblocked,
    settings,
    backup_role_url,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """docs/operations/disaster-recovery.md: beat runs `lifecycle.backup` daily, a whole-database
    backup of every workspace; PRODUCT.md: backups and tenant deletion are both beat jobs, and one
    tenant's state must not undo another's processing. Here one workspace (due for deletion) is
    mid-purge — its schema dropped, the purge's transaction still deleting its public rows — when
    the backup starts. pg_dump lists the workspace's tables from its snapshot, waits for their
    locks, then fails with "relation ... does not exist" once the purge commits: the backup of
    every other workspace (acme, globex) fails with it (`lifecycle.backup.failed`), and the next
    try was a day later. The backup now waits for purges under way (and purges wait for it:
    `backup_running`), so it completes."""
    settings.FOUNDRY_BACKUP_DATABASE_URL = backup_role_url
    settings.FOUNDRY_BACKUP_DIR = str(tmp_path)
    settings.FOUNDRY_BACKUP_KEEP = 0
    slug = f"d{uuid.uuid4().hex[:10]}"
    doomed = tenant_provision(slug=slug, name="Doomed", owner_email=f"o@{slug}.test", owner_password=PASSWORD).tenant
    tenant_deletion_schedule(tenant=doomed, actor="operator:1", grace_days=0)

    # The purge pauses after its schema is dropped, while it deletes the workspace's public rows.
    proceed, paused = threading.Event(), threading.Event()
    real_tables = deletion.public_tenant_tables

    def tables_slowly():
        paused.set()
        proceed.wait(60)
        return real_tables()

    monkeypatch.setattr(deletion, "public_tenant_tables", tables_slowly)
    outcome: dict = {}

    def run(name, function):
        try:
            outcome[name] = function()
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            outcome[name] = exc
        finally:
            connections.close_all()

    purger = threading.Thread(target=run, args=("purge", lifecycle_tasks.purge_due), daemon=True)
    backer = threading.Thread(target=run, args=("backup", lambda: lifecycle_tasks.backup.apply().get()), daemon=True)
    purger.start()
    try:
        assert paused.wait(60), "the purge did not reach its public rows"
        backer.start()
        deadline = time.monotonic() + 30
        with superuser_connection(autocommit=True) as watcher:
            while time.monotonic() < deadline and backer.is_alive():
                waiting = watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND (application_name = 'pg_dump' OR wait_event = 'advisory')"  # the dump, or the backup's wait
                ).fetchone()
                if waiting:
                    break
                time.sleep(0.1)
    finally:
        proceed.set()
        purger.join(120)
        if backer.is_alive() or "backup" not in outcome:
            backer.join(300)
    assert outcome["purge"] == 1  # the workspace is gone, as it should be
    assert not isinstance(outcome["backup"], Exception), f"the whole-database backup failed: {outcome['backup']}"


def test_a_purge_asked_for_while_the_whole_database_is_dumped_waits_for_the_next_pass(db, settings):
    """A purge while a whole-database backup holds the schemas' lock: refused, 409
    `backup_running`, nothing purged (the hourly pass purges it once the backup is done)."""
    from apps.lifecycle.backup import SCHEMAS_LOCK
    from apps.tenants.models import Tenant
    from foundry.errors import ServiceError

    slug = f"d{uuid.uuid4().hex[:10]}"
    doomed = tenant_provision(slug=slug, name="Doomed", owner_email=f"o@{slug}.test", owner_password=PASSWORD).tenant
    tenant_deletion_schedule(tenant=doomed, actor="operator:1", grace_days=0)
    with superuser_connection(autocommit=True) as backup:
        backup.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [SCHEMAS_LOCK])
        with pytest.raises(ServiceError) as refused:
            deletion.tenant_purge(tenant=doomed, actor="operator:1")
    assert (refused.value.code, refused.value.status) == ("backup_running", 409)
    assert Tenant.objects.filter(pk=doomed.pk, status=Tenant.Status.DELETING).exists()
