"""Background work: a beat fan-out survives one chain's failure, a run's database errors are retried a
bounded number of times, a delivery has time limits and its waiting copies expire."""

import pytest
from django.db import OperationalError

# The worker imports every app's tasks at start; do the same here.
import apps.audit.tasks
import apps.billing.tasks
import apps.lifecycle.tasks
import apps.runs.tasks
import apps.tenants.tasks  # noqa: F401
from apps.audit import tasks as audit_tasks
from apps.audit.models import PLATFORM, AuditCheckpoint
from apps.audit.scope import rls_scope
from apps.audit.services import audit_record
from foundry.celery import app

# --- Beat fan-out: one tenant's failure must stop no other ----------------------------------------


def _checkpoints(tenant_id: int) -> int:
    with rls_scope(tenant_id):
        return AuditCheckpoint.objects.filter(tenant_id=tenant_id).count()


def test_sign_heads_one_chain_failing_still_signs_every_other_chain(acme, globex, monkeypatch):
    """audit.sign_heads loops over every chain in one task with no per-chain isolation: the
    first chain that raises (here acme's) leaves every chain after it unsigned."""
    audit_record(action="review.a", actor="test", data={}, chain=acme.pk)
    audit_record(action="review.g", actor="test", data={}, chain=globex.pk)
    real = audit_tasks.audit_checkpoint_sign

    def flaky(tenant_id):
        if tenant_id in (PLATFORM, acme.pk):  # platform chain first, then acme: both before globex
            raise RuntimeError(f"chain {tenant_id} is broken")
        return real(tenant_id)

    monkeypatch.setattr(audit_tasks, "audit_checkpoint_sign", flaky)
    before = _checkpoints(globex.pk)
    audit_tasks.audit_sign_heads.apply().get(propagate=False)
    assert _checkpoints(globex.pk) == before + 1, "globex's chain was left unsigned because another chain failed"


# --- Retries must be bounded ----------------------------------------------------------------------


def test_run_execute_retries_a_persistent_database_error_a_bounded_number_of_times(acme, monkeypatch):
    """An error that never goes away (a statement timeout in one run's step, a deadlock the step
    always hits) is retried DB_RETRIES times, not for ever; the sweep then counts a recovery."""
    from apps.runs import tasks as run_tasks

    calls = []

    def always_failing(run_id):
        calls.append(run_id)
        if len(calls) >= 40:
            raise RuntimeError("stop: the retries never ended on their own")
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr(run_tasks, "run_advance_admitted", always_failing)
    run_tasks.run_execute.apply(args=[acme.schema_name, "00000000-0000-0000-0000-000000000000"]).get(propagate=False)
    assert len(calls) == run_tasks.DB_RETRIES + 1, f"tried {len(calls)} times"


# --- Time limits on tasks that call the network -----------------------------------------------------

NETWORK_TASKS = [
    "audit.deliver_sink",  # webhooks, syslog (DNS resolution is not bounded by the socket timeouts)
]


@pytest.mark.parametrize("name", NETWORK_TASKS)
def test_tasks_that_call_the_network_have_a_hard_and_soft_time_limit(name):
    task = app.tasks[name]
    hard = task.time_limit if task.time_limit is not None else app.conf.task_time_limit
    soft = task.soft_time_limit if task.soft_time_limit is not None else app.conf.task_soft_time_limit
    assert hard is not None and soft is not None, f"{name}: time_limit={hard!r} soft_time_limit={soft!r}"


# --- Results must not leave tenant data in the shared result backend -------------------------------


def test_sign_heads_control_signs_globex_when_nothing_fails(acme, globex):
    """Control for the test above: without a failing chain, globex's new head is signed."""
    audit_record(action="review.g", actor="test", data={}, chain=globex.pk)
    before = _checkpoints(globex.pk)
    audit_tasks.audit_sign_heads.apply().get()
    assert _checkpoints(globex.pk) == before + 1


# --- A beat fan-out every 15 s must not pile up copies while workers are busy ----------------------


def test_deliver_sinks_does_not_queue_a_new_copy_per_sink_every_15_seconds_while_one_waits(acme, monkeypatch):
    """audit.deliver_sinks (every 15 s) queues audit.deliver_sink for every due sink with no
    expiry and no check that one is already queued: while the shared `celery` queue is busy with
    runs, each beat adds another copy per sink (240 per sink per hour), all waiting behind the runs."""
    monkeypatch.setattr("apps.audit.delivery.sinks_due", lambda: [(acme.pk, 4242)])
    sent = []
    monkeypatch.setattr(
        audit_tasks.audit_deliver_sink, "apply_async", lambda args=None, kwargs=None, **options: sent.append(options)
    )
    for _ in range(4):  # one minute of beat, no worker free
        audit_tasks.audit_deliver_sinks.apply().get()
    pending_forever = [o for o in sent if not o.get("expires")]
    assert len(pending_forever) <= 1, f"{len(pending_forever)} copies of one sink's delivery queued, none expiring"
