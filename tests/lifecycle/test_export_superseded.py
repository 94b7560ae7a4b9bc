"""An export job's copy that lost its Redis lock mid-archive (the worker stalled past the lock's
expiry, or a Redis failover dropped the key) while a second copy (the broker's redelivery) took
the lock and finished the export: the first, fenced by its attempt number on the job's row
(exports.py `_superseded`), stops before it touches storage. It used to delete the archive the
second stored, store its own under the same name, find the job succeeded and delete that too:
the job said `succeeded`, with no archive (found by a review)."""

import threading

from django.core.files.storage import default_storage
from django.db import connections
from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from apps.lifecycle import exports
from apps.lifecycle.models import Export


def test_a_copy_that_lost_its_lock_does_not_destroy_the_archive_another_copy_stored(
    fresh_tenant, django_db_blocker, monkeypatch, settings, tmp_path
):
    """export_run is "safe to deliver twice": a copy another copy superseded stops instead of
    overwriting and then deleting the archive the other stored. The export succeeded AND its
    archive exists."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            job = Export.objects.create(created_by="owner")
        reading, go = threading.Event(), threading.Event()
        original = exports._Progress.__call__
        first = threading.local()

        def progress(self, done, total):
            if getattr(first, "is_a", False) and not reading.is_set():
                reading.set()
                go.wait(60)
            return original(self, done, total)

        monkeypatch.setattr(exports._Progress, "__call__", progress)
        out: dict = {}

        def copy(name: str, is_a: bool):
            first.is_a = is_a
            try:
                with schema_context(tenant.schema_name):
                    out[name] = exports.export_run(export_id=str(job.pk))
            except BaseException as exc:  # noqa: BLE001
                out[name] = exc
            finally:
                connections.close_all()

        a = threading.Thread(target=copy, args=("a", True), daemon=True)
        a.start()
        assert reading.wait(60), "copy A never started reading"
        # Copy A's lock expires under it (stalled worker / Redis failover).
        get_redis_connection("default").delete(f"foundry:run-lock:{tenant.schema_name}:export:{job.pk}")
        b = threading.Thread(target=copy, args=("b", False), daemon=True)
        b.start()
        b.join(120)
        go.set()
        a.join(120)
        assert out.get("b") == Export.Status.SUCCEEDED, out
        with schema_context(tenant.schema_name):
            fresh = Export.objects.get(pk=job.pk)
        assert fresh.status == Export.Status.SUCCEEDED, (fresh.status, fresh.error, out)
        assert default_storage.exists(fresh.file), (
            f"export {fresh.status} names {fresh.file!r}, which no longer exists (copy A: {out.get('a')!r})"
        )
