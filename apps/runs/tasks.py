"""The Celery task that advances a run (engine.py does the work).

Delivery is at least once, and every delivery is safe (the engine starts from the checkpoint):
- `acks_late`: the message is acknowledged when the task ends, not when it starts, so a run
  whose worker dies is delivered again;
- `reject_on_worker_lost`: when the worker process is killed (SIGKILL, out of memory) the
  message goes back to the queue at once; without it Celery acknowledges it; `acks_on_timeout`
  off: the same when a hard time limit (`--time-limit`) killed it; a soft one
  (`--soft-time-limit`) puts the run back in the queue and the task is sent again at once;
- a whole worker lost (machine gone) leaves the message unacknowledged, and the Redis broker
  hands it to another worker after its visibility timeout (CELERY_BROKER_TRANSPORT_OPTIONS);
- a copy that finds the run locked by a live worker comes back later (`retry`), so a run is
  never advanced by two workers, and never left behind when the lock's holder died;
- a run executes on one of its workspace's run slots (admission.py); one that finds none free
  stays queued and comes back later (`retry`), neither lost nor failed;
- a run stopped because its tenant's allowed networks changed is sent again at once (`retry`
  without a countdown): the next attempt builds its tools and provider from the new list.
"""

import random
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from apps.runs.admission import NO_SLOT, run_advance_admitted, run_hand_out, run_slot_retry_countdown
from apps.runs.engine import TRANSIENT
from apps.runs.locks import RunLock
from apps.runs.models import Run
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list
from foundry.celery import TenantTask

# A running run untouched this long, and unlocked, has lost its worker and its task (say, Redis
# restarted without persistence); a queued one, this long, has lost its task — or waits in a
# long queue, which a copy does not lengthen much this rarely. The sweep hands either to a worker.
STALE_RUNNING = timedelta(minutes=5)
STALE_QUEUED = timedelta(minutes=30)
DB_RETRIES = 20


@shared_task(
    base=TenantTask,
    name="runs.execute",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    acks_on_timeout=False,  # killed by a hard time limit: put back, as any killed worker process
    max_retries=None,
    ignore_result=True,
)
def run_execute(self, schema_name: str, run_id: str, db_failures: int = 0) -> str:
    try:
        status = run_advance_admitted(run_id)
    except SoftTimeLimitExceeded:
        # The worker's soft time limit: the engine put the run back in the queue; send it again.
        raise self.retry(countdown=0) from None
    except TRANSIENT as exc:
        # The database or Redis gone for a moment: try again, later each time, DB_RETRIES times
        # (~15 min), counted apart from the waits below; then the task gives up and the sweep
        # hands the run to a worker later, which counts as a recovery (FOUNDRY_RUN_MAX_RECOVERIES):
        # an error that never clears ends the run.
        if db_failures >= DB_RETRIES:
            raise
        countdown = min(60, 2**db_failures) * (0.5 + random.random() / 2)  # noqa: S311 — jitter
        raise self.retry(exc=exc, countdown=countdown, args=[schema_name, run_id, db_failures + 1]) from None
    if status == NO_SLOT:
        # The workspace runs as many runs as its plan allows (or Redis is away): wait queued.
        raise self.retry(countdown=run_slot_retry_countdown())
    if status == "restart":
        # Stopped so that a fresh attempt reads what changed (the tenant's allowed networks).
        raise self.retry(countdown=0)
    if status == "locked":
        # Another worker holds the run: it is busy with it, or it died and its lock will expire.
        raise self.retry(countdown=max(1.0, settings.FOUNDRY_RUN_LOCK_SECONDS / 2))
    return status


@shared_task(base=TenantTask, name="runs.sweep_tenant", ignore_result=True)
def run_sweep_tenant(schema_name: str, *, resumed: bool = False) -> int:
    """Re-queue this tenant's runs that lost their task (at-least-once delivery makes it safe);
    `resumed`: the tenant was just resumed, so every queued run goes back to a worker now. Also
    deletes the checkpoints an erasure still owes, of runs that have stopped since."""
    from apps.lifecycle.erasure import checkpoint_erasures_finish

    checkpoint_erasures_finish()
    now = timezone.now()
    running = now - max(STALE_RUNNING, timedelta(seconds=2 * settings.FOUNDRY_RUN_LOCK_SECONDS))
    queued = Q(status=Run.Status.QUEUED) if resumed else Q(status=Run.Status.QUEUED, updated_at__lt=now - STALE_QUEUED)
    runs = Run.objects.filter(Q(status=Run.Status.RUNNING, updated_at__lt=running) | queued)
    count = 0
    for run_id in runs.values_list("pk", flat=True)[:1000]:
        if RunLock(connection.schema_name, str(run_id)).held:
            continue
        # Not sent again at every sweep while that copy waits in a long queue (each copy would
        # lengthen it): once per STALE_QUEUED, should this one be lost too; nor while its task
        # waits for a slot. Claimed before sending: of two sweeps at once, one sends.
        if not run_hand_out(connection.schema_name, run_id, STALE_QUEUED.total_seconds(), claim=not resumed):
            continue
        run_execute.apply_async(args=[schema_name, str(run_id)], queue=settings.FOUNDRY_RUNS_QUEUE)
        count += 1
    return count


@shared_task(name="runs.sweep", ignore_result=True)
def run_sweep() -> int:
    """Every few minutes (beat): sweep each active tenant for runs that lost their task."""
    schemas = list(tenant_list().filter(status=Tenant.Status.ACTIVE).values_list("schema_name", flat=True))
    for schema_name in schemas:
        run_sweep_tenant.delay(schema_name)
    return len(schemas)
