"""The beat job `runs.sweep` delivered twice at the same moment (two beat processes during a
rolling deploy, or a redelivered copy): each run that lost its task is handed out once (found by
the periodic-jobs review)."""

import json
import uuid
from datetime import timedelta

import redis
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.models import Run
from apps.runs.services import run_create
from apps.runs.tasks import run_sweep_tenant
from tests.races.conftest import run_together
from tests.runs.conftest import FINANCE, TRIAGE, deploy


def test_two_sweeps_at_once_hand_a_lost_run_out_once(fresh_tenant, django_db_blocker, settings):
    """The sweep once checked the handed-out mark (EXISTS) and set it afterwards (a plain SET):
    two sweeps of the same workspace at once both passed the check and both queued a copy of
    every lost run, the very duplication the mark exists to prevent. The mark is taken atomically
    (SET NX, `run_hand_out`) and only the sweep that took it queues a copy."""
    settings.FOUNDRY_RUNS_QUEUE = queue = f"rv-beat-sweep-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    schema = fresh_tenant.schema_name
    try:
        with django_db_blocker.unblock():
            agent = deploy(fresh_tenant, FINANCE, TRIAGE)
            with schema_context(schema):
                runs = [run_create(agent=agent, input=f"Triage invoice INV-{n}.", created_by="test") for n in range(20)]
                Run.objects.filter(pk__in=[r.pk for r in runs]).update(
                    updated_at=timezone.now() - timedelta(minutes=31)
                )
            results = run_together(
                lambda: run_sweep_tenant.apply(args=[schema]).get(),
                lambda: run_sweep_tenant.apply(args=[schema]).get(),
            )
        assert all(exc is None for _, exc in results), results
        sent = [m["headers"]["argsrepr"] for m in map(json.loads, broker.lrange(queue, 0, -1))]
        per_run = {str(r.pk): sum(str(r.pk) in a for a in sent) for r in runs}
        twice = [pk for pk, n in per_run.items() if n > 1]
        assert not twice, f"{len(twice)} of 20 lost runs were handed out twice by two sweeps at once"
    finally:
        broker.delete(queue)
