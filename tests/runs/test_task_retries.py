"""The run task retries every error the engine puts a run back in the queue for (engine.py
`TRANSIENT`, which tasks.py imports): it retried only Django's OperationalError, psycopg's and
redis' ConnectionError, so a Redis outage seen while renewing the lock (a bare RedisError), a Redis
timeout or a closed database connection ended the task (acknowledged) and left the run queued with
no task until the sweep, 30 minutes later. Found by a review."""

import pytest
from django.db import InterfaceError
from django_tenants.utils import schema_context
from redis.exceptions import TimeoutError as RedisTimeoutError

import apps.runs.tasks as run_tasks
from apps.runs.engine import Attempt
from apps.runs.models import Run
from tests.runs.conftest import triage  # noqa: F401 - fixture
from tests.runs.test_engine import start


def test_a_lock_lost_to_a_redis_outage_is_retried_by_the_task(acme, triage):  # noqa: F811
    """The run's lock could not be renewed, Redis unreachable: the attempt requeues the run, the
    task retries, and the run ends."""
    run = start(acme, triage, "Triage invoice INV-1001.")
    record = Attempt._record
    outage = []

    def record_then_lock_unreachable(self, step, payload):
        record(self, step, payload)
        if not outage:  # after the first step, the renewer gave up: Redis unreachable
            outage.append(1)
            self.lock.unreachable = True
            self.lock._lost.set()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Attempt, "_record", record_then_lock_unreachable)
        run_tasks.run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)
    with schema_context("acme"):
        after = Run.objects.get(pk=run.pk)
    assert outage == [1]
    assert after.status == "succeeded", (
        f"Redis outage during the attempt: the run was left {after.status!r} at step {after.step_count} "
        "and its task was not retried (RedisError is not in tasks._TRANSIENT)"
    )


@pytest.mark.parametrize(
    "error",
    [RedisTimeoutError("Timeout reading from socket"), InterfaceError("connection already closed")],
    ids=["redis-timeout", "db-interface-error"],
)
def test_other_outage_errors_the_engine_requeues_for_are_retried_by_the_task(acme, triage, monkeypatch, error):  # noqa: F811
    """A Redis timeout or a closed database connection: retried, and the run ends."""
    run = start(acme, triage, "Triage invoice INV-1001.")
    quota = Attempt._quota
    raised = []

    def blip(self, approved):
        if not raised:
            raised.append(1)
            raise error
        return quota(self, approved)

    monkeypatch.setattr(Attempt, "_quota", blip)
    run_tasks.run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)
    with schema_context("acme"):
        after = Run.objects.get(pk=run.pk)
    assert raised == [1]
    assert after.status == "succeeded", (
        f"{type(error).__name__} mid-attempt: the engine requeued the run ({after.status!r}) but the task "
        "was not retried"
    )
