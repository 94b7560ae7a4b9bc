"""An export job whose workspace is purged while the job is still reading its snapshot (an
operator deleting a workspace with no grace period, or `lifecycle.purge_due` reaching a workspace
whose export started just before its deletion was scheduled): the purge waits for the reading to
end, then drops the schema; the job's next statements find no table, and it ends quietly as
"gone", as one purged after its reading does — no failure raised out of the task, none logged."""

import threading
import time

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from apps.lifecycle import exports
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.lifecycle.models import Export
from apps.tenants.models import Tenant


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _drop_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'DROP SCHEMA%%'"
        )
        return cursor.fetchone()[0] > 0


def test_an_export_whose_workspace_is_purged_while_it_reads_ends_quietly_as_gone(
    fresh_tenant, django_db_blocker, monkeypatch
):
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            job = Export.objects.create(created_by="owner")
        reading, go = threading.Event(), threading.Event()
        original = exports._Progress.__call__

        def progress(self, done, total):  # the first call: every table counted, inside the snapshot
            if not reading.is_set():
                reading.set()
                go.wait(30)
            return original(self, done, total)

        monkeypatch.setattr(exports._Progress, "__call__", progress)
        out: dict = {}

        def write():
            try:
                with schema_context(tenant.schema_name):
                    out["export"] = exports.export_run(export_id=str(job.pk))
            except BaseException as exc:  # noqa: BLE001 - reported below
                out["export"] = exc
            finally:
                connections.close_all()

        def purge():
            try:
                assert reading.wait(30)
                doomed = tenant_deletion_schedule(tenant=tenant, actor="operator:test", grace_days=0)
                out["purge"] = tenant_purge(tenant=doomed, actor="operator:test")
            except BaseException as exc:  # noqa: BLE001
                out["purge"] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=write, daemon=True), threading.Thread(target=purge, daemon=True)]
        for thread in threads:
            thread.start()
        assert reading.wait(30), "the export never started reading"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _drop_waiting():
            time.sleep(0.05)
        assert _drop_waiting(), "the purge did not reach its DROP SCHEMA while the export read"
        go.set()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "the export or the purge hung"
        assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not isinstance(out["purge"], BaseException), f"the purge failed: {out['purge']!r}"
    assert out["export"] == "gone", f"the export task ended with {out['export']!r}, not 'gone'"
