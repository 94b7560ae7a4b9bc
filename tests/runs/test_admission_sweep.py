"""Run admission (apps/runs/admission.py) and the sweep of runs that lost their task (apps/runs/tasks.py)."""

import json
import uuid
from datetime import timedelta

import pytest
import redis
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.admission import NO_SLOT, run_advance_admitted, run_slot_key
from apps.runs.models import Run
from apps.runs.services import run_create
from apps.runs.tasks import run_sweep_tenant
from apps.tenants.limits import limiter, limits_cache_clear
from tests.runs.conftest import FINANCE, TRIAGE, deploy


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


def test_a_run_waiting_for_a_slot_is_not_handed_out_again_by_every_sweep(acme, settings):
    """A run whose task is refused a slot stays queued, untouched, however long it waits: the
    sweep of runs that lost their task leaves it, as its task said in Redis that it is alive (it
    queued a copy on every sweep once the run had waited 30 minutes, each copy polling forever)."""
    settings.FOUNDRY_RUNS_QUEUE = queue = f"rv-sweep-{uuid.uuid4().hex[:8]}"
    agent = deploy(acme, FINANCE, TRIAGE)
    call_command("tenant_limits", "acme", "--concurrent-runs", "1")
    holder = limiter().acquire(run_slot_key(acme.pk), 1, 600)  # the workspace's one slot, busy
    assert holder
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        with schema_context("acme"):
            run = run_create(agent=agent, input="Triage invoice INV-1001.", created_by="test")
            # It has waited its turn for 31 minutes: queued, untouched, as admission leaves it.
            Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(minutes=31))
        copies = 0
        for _ in range(3):  # three sweeps, two minutes apart; its live task tried just before each
            with schema_context("acme"):
                assert run_advance_admitted(run.pk) == NO_SLOT  # the task is alive, and retries
            run_sweep_tenant.apply(args=["acme"]).get()
            copies = len(
                [m for m in map(json.loads, broker.lrange(queue, 0, -1)) if str(run.pk) in m["headers"]["argsrepr"]]
            )
        assert copies == 0, f"{copies} extra runs.execute tasks queued for one run whose task is alive"
    finally:
        broker.delete(queue)
        limiter().release(run_slot_key(acme.pk), holder)
