"""Noisy neighbours on the run queue: a workspace at its concurrent-runs limit with a backlog of
queued runs does not hold back another workspace's runs (PRODUCT.md, Controls: one tenant's
flood never slows another's). Its waiting runs come back FOUNDRY_RUN_SLOT_RETRY_SECONDS apart for
each run waiting per slot (apps/runs/admission.py run_slot_retry_countdown): together, about as
often as its slots could take one, however many it queued."""

import time
import uuid

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.runs.admission import run_slot_key
from apps.runs.services import run_start
from apps.tenants.limits import limiter, limits_cache_clear
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_worker import wait_for, worker

BACKLOG = 300
DONE = "Triage invoice INV-1001."


def _provision() -> object:
    slug = f"f{uuid.uuid4().hex[:10]}"
    return tenant_provision(
        slug=slug, name=f"Fair Co {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
    ).tenant


def _owner(tenant) -> User:
    with schema_context(tenant.schema_name):
        return User.objects.get(email=f"owner@{tenant.slug}.test")


def _start(tenant, agent):
    with schema_context(tenant.schema_name):
        return run_start(actor=_owner(tenant), agent=agent, input=DONE)


def _latency(tenant, agent) -> float:
    began = time.monotonic()
    run = wait_for(tenant, _start(tenant, agent), "succeeded", "failed", timeout=120)
    assert run.status == "succeeded"
    return time.monotonic() - began


@pytest.fixture
def tenants(django_db_setup, django_db_blocker, settings):
    settings.FOUNDRY_RUNS_QUEUE = f"runs-fair-{uuid.uuid4().hex[:8]}"
    limits_cache_clear()
    with django_db_blocker.unblock():
        yield _provision(), _provision()
    limits_cache_clear()


@pytest.mark.alone  # a latency against a baseline: measured with the rest of the suite done
def test_a_capped_workspaces_backlog_does_not_delay_another_workspaces_run(tenants, settings):
    """Workspace A (1 concurrent run, its slot busy with a long run) has 300 runs queued, retried
    as if at 0.5 s; workspace B's run completes about as fast as with no backlog (3 s more at most)."""
    noisy, quiet = tenants
    call_command("tenant_limits", noisy.slug, "--concurrent-runs", "1")
    noisy_agent = deploy(noisy, FINANCE, TRIAGE)
    quiet_agent = deploy(quiet, FINANCE, TRIAGE)
    key = run_slot_key(noisy.pk)
    lease = limiter().acquire(key, 1, 600)  # A's one slot: a long run in progress
    assert lease
    try:
        with worker(settings.FOUNDRY_RUNS_QUEUE, concurrency=2, FOUNDRY_RUN_SLOT_RETRY_SECONDS="0.5"):
            _latency(quiet, quiet_agent)  # warm the worker's processes
            baseline = min(_latency(quiet, quiet_agent) for _ in range(3))
            for _ in range(BACKLOG):
                _start(noisy, noisy_agent)
            time.sleep(15)  # A's backlog reaches its steady state: every run waiting, re-tried
            loaded = _latency(quiet, quiet_agent)
    finally:
        limiter().release(key, lease)
    assert loaded <= baseline + 3, (loaded, baseline)


def test_a_workspaces_waiting_runs_come_back_the_rarer_the_more_wait_per_slot(tenants, settings):
    """Its waiting runs' countdown grows with their number per slot, to RETRY_MAX_SECONDS; a
    workspace with no backlog keeps FOUNDRY_RUN_SLOT_RETRY_SECONDS."""
    from django.db import connection

    from apps.runs import admission

    noisy, quiet = tenants
    call_command("tenant_limits", noisy.slug, "--concurrent-runs", "2")
    settings.FOUNDRY_RUN_SLOT_RETRY_SECONDS = 5.0
    with schema_context(noisy.schema_name):
        connection.tenant = noisy
        for n in range(40):
            admission._waiting_mark(f"run-{n}")
        noisy_countdown = admission.run_slot_retry_countdown()
        for n in range(400):
            admission._waiting_mark(f"more-{n}")
        capped = admission.run_slot_retry_countdown()
    with schema_context(quiet.schema_name):
        connection.tenant = quiet
        admission._waiting_mark("alone")
        quiet_countdown = admission.run_slot_retry_countdown()
    assert 5.0 * 20 * 0.75 <= noisy_countdown <= 5.0 * 20 * 1.25  # 40 waiting, 2 slots
    assert admission.RETRY_MAX_SECONDS * 0.75 <= capped <= admission.RETRY_MAX_SECONDS * 1.25
    assert 5.0 * 0.75 <= quiet_countdown <= 5.0 * 1.25
