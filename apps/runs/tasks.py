"""The Celery task that advances a run (engine.py does the work).

Delivery is at least once, and every delivery is safe (the engine starts from the checkpoint):
- `acks_late`: the message is acknowledged when the task ends, not when it starts, so a run
  whose worker dies is delivered again;
- `reject_on_worker_lost`: when the worker process is killed (SIGKILL, out of memory) the
  message goes back to the queue at once; without it Celery acknowledges it;
- a whole worker lost (machine gone) leaves the message unacknowledged, and the Redis broker
  hands it to another worker after its visibility timeout (CELERY_BROKER_TRANSPORT_OPTIONS);
- a copy that finds the run locked by a live worker comes back later (`retry`), so a run is
  never advanced by two workers, and never left behind when the lock's holder died.
"""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone
from psycopg import OperationalError as PsycopgOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from apps.runs.engine import run_advance
from apps.runs.locks import RunLock
from apps.runs.models import Run
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list
from foundry.celery import TenantTask

# A queued or running run untouched this long, and unlocked, has lost its task (say, Redis
# restarted without persistence): the sweep hands it to a worker again.
STALE_AFTER = timedelta(minutes=5)


@shared_task(
    base=TenantTask,
    name="runs.execute",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    ignore_result=True,
    # The database or Redis gone for a moment: try again, later each time.
    autoretry_for=(OperationalError, PsycopgOperationalError, RedisConnectionError),
    retry_backoff=1,
    retry_backoff_max=60,
)
def run_execute(self, schema_name: str, run_id: str) -> str:
    status = run_advance(run_id)
    if status == "locked":
        # Another worker holds the run: it is busy with it, or it died and its lock will expire.
        raise self.retry(countdown=max(1.0, settings.FOUNDRY_RUN_LOCK_SECONDS / 2))
    return status


@shared_task(base=TenantTask, name="runs.sweep_tenant", ignore_result=True)
def run_sweep_tenant(schema_name: str) -> int:
    """Re-queue this tenant's runs that lost their task (at-least-once delivery makes it safe)."""
    stale = timezone.now() - max(STALE_AFTER, timedelta(seconds=2 * settings.FOUNDRY_RUN_LOCK_SECONDS))
    runs = Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING], updated_at__lt=stale)
    count = 0
    for run_id in runs.values_list("pk", flat=True)[:1000]:
        if RunLock(connection.schema_name, str(run_id)).held:
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
