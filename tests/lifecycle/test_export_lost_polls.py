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
