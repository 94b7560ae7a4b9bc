"""The data export page's poll and an export that will never finish."""

from contextlib import contextmanager
from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.locks import RunLock
from tests.conftest import client_for


@contextmanager
def worker_holding(tenant, export):
    """A worker at work on `export`: the export's lock held in Redis, as export_tenant holds it."""
    lock = RunLock(tenant.schema_name, f"export:{export.pk}")
    assert lock.acquire()
    try:
        yield
    finally:
        lock.release()


def test_an_export_whose_task_was_lost_is_shown_failed_and_not_polled_for(acme):
    """An export queued while the broker was away never gets its task (exports.py: it is lost
    after QUEUED_LOST_AFTER, 30 minutes; only `export_start` noticed, when someone started
    another). Two hours later the Data export page still said "waiting for a worker" and polled
    every second for as long as it was open. Now it is failed as lost (export_lost) when the page
    is read, and the page does not poll for it."""
    from apps.lifecycle.models import Export

    with schema_context("acme"):
        export = Export.objects.create(status="queued", created_by="owner@acme.test")
        Export.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(hours=2))
    owner = client_for(acme, "owner@acme.test")
    page = owner.get("/settings/data-export/").content.decode()
    assert 'hx-trigger="every 1s"' not in page, "the page polls for an export that export_start calls lost"
    assert "waiting for a worker" not in page
    with schema_context("acme"):
        export.refresh_from_db()
    assert export.status == "failed" and export.error.startswith("export_lost")


def test_reading_the_export_page_does_not_fail_a_queued_export_a_worker_has_taken(acme):
    """`_lost` judges a queued export by its age alone: queued more than 30 minutes is lost,
    whoever holds its lock. A task that reached a worker late (a backlog, a resumed workspace's
    requeue) takes the lock, then (export_run) reads the row and marks it running: a page read
    (polled every second) landing in between fails it export_lost — and the worker's
    unconditional UPDATE to running then revives the failed row, which may end succeeded after
    an `export.finished` failure was recorded. Correct: an export whose lock is held is not
    lost, queued or running (check `_held` for queued exports too; and export_run should move
    it to running only WHERE status is still active)."""
    from apps.lifecycle.models import Export

    with schema_context("acme"):
        export = Export.objects.create(status="queued", created_by="owner@acme.test")
        Export.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(minutes=45))
    owner = client_for(acme, "owner@acme.test")
    with worker_holding(acme, export):  # a worker has taken it (export_run holds its lock)
        assert owner.get("/settings/data-export/").status_code == 200
        with schema_context("acme"):
            export.refresh_from_db()
        assert export.status == "queued", f"failed by a page read while a worker holds it: {export.error}"
