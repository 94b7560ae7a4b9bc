"""An export whose worker process is killed mid-archive starts over (docs/export-jobs.md: "A task
whose worker died is delivered again and the export starts over, up to 3 workers in all").

Export tasks run with acks_late and reject_on_worker_lost, so a killed pool process puts the
message back in the queue at once, and the next pool process takes it within a second or so,
while the dead process's export lock (FOUNDRY_RUN_LOCK_SECONDS) is still in Redis. That copy found
the lock held, returned "locked" and was acknowledged: nothing sent the task again, and the export
stayed `running` until someone opened the export page (found by the Celery review). Now a copy
finding the lock held asks again later while the export is active, as `runs.execute` does.
"""

import os
import signal
import time
import uuid

import psycopg
from django_tenants.utils import schema_context

from apps.lifecycle.models import Export
from apps.lifecycle.tasks import export_tenant
from tests.conftest import test_database_url
from tests.runs.test_worker import pool_process, worker

LOCK_SECONDS = 8


def test_an_export_whose_worker_was_killed_starts_over(fresh_tenant, django_db_blocker, settings, tmp_path):
    from tests import settings as test_settings

    settings.MEDIA_ROOT = test_settings.MEDIA_ROOT
    queue = f"exports-test-{uuid.uuid4().hex[:8]}"
    schema = fresh_tenant.schema_name
    with django_db_blocker.unblock():
        with schema_context(schema):
            export = Export.objects.create(created_by="test")
        # Hold a table the archive reads, so the export is under way (running, locked) when killed.
        blocker = psycopg.connect(test_database_url().replace("postgres://", "postgresql://"))
        blocker.execute(f'LOCK TABLE "{schema}".accounts_user IN ACCESS EXCLUSIVE MODE')
        try:
            with worker(
                queue,
                FOUNDRY_RUN_LOCK_SECONDS=str(LOCK_SECONDS),
                FOUNDRY_RUN_SLOT_SECONDS=str(LOCK_SECONDS),
                TMPDIR=str(tmp_path),
            ) as proc:
                export_tenant.apply_async(args=[schema, str(export.pk)], queue=queue)
                deadline = time.monotonic() + 30
                with schema_context(schema):
                    while Export.objects.get(pk=export.pk).status != Export.Status.RUNNING:
                        assert time.monotonic() < deadline, "the worker never took the export up"
                        time.sleep(0.05)
                time.sleep(0.5)
                os.kill(pool_process(proc), signal.SIGKILL)  # out of memory, say
                blocker.rollback()  # the lock goes; the next worker process may read the data
                # Past the dead process's lock, and time enough for a fresh attempt to finish.
                deadline = time.monotonic() + LOCK_SECONDS + 40
                with schema_context(schema):
                    while time.monotonic() < deadline:
                        current = Export.objects.get(pk=export.pk)
                        if current.status in (Export.Status.SUCCEEDED, Export.Status.FAILED):
                            break
                        time.sleep(0.2)
                # The message is not waiting anywhere: the redelivered copy was taken and acknowledged.
                from kombu import Connection

                with Connection(settings.CELERY_BROKER_URL) as conn:
                    redis = conn.default_channel.client
                    left = (redis.llen(queue), redis.hlen("unacked"))
        finally:
            blocker.close()
    assert (current.status, current.attempts) == (Export.Status.SUCCEEDED, 2), (
        f"the export is {current.status} after attempt {current.attempts} (its task left in the broker:"
        f" queued, unacked = {left})"
    )
    # The killed process's archive under way left nothing of the workspace on the worker's disk.
    assert list(tmp_path.glob("foundry-export-*")) == []
