"""A worker's claim numbers the run (`attempt`), and everything the worker writes for the run
afterwards is fenced by that number (docs/runs.md, "Durability"): putting the run back in the
queue and recording its end included; and a Redis outage that outlasts the run's lock puts the
run back in the queue for the task's retry."""

import time

import pytest
from django_tenants.utils import schema_context
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.lock import Lock

import apps.runs.engine as engine
from apps.runs.engine import Attempt, run_advance
from apps.runs.locks import RunLock
from apps.runs.models import Approval, Run
from tests.runs.conftest import delegating_run
from tests.runs.test_engine import start


def test_a_worker_whose_run_another_claimed_does_not_put_that_run_back_in_the_queue(acme, monkeypatch):
    """A worker stalled at a sub-agent step while another worker claimed its run (recovering it)
    and holds the child: the first one's ChildBusy does not put the other's running run back in
    the queue."""
    run = delegating_run(acme)

    real_create = engine.run_create
    held = []

    def taken_over_meanwhile(**kwargs):
        child = real_create(**kwargs)
        # W1 stalls here; W2 claims the parent (recovering it) and holds the child's lock.
        engine._run_claim(run.pk)
        lock = RunLock("acme", str(child.pk))
        assert lock.acquire()
        held.append(lock)
        return child

    monkeypatch.setattr(engine, "run_create", taken_over_meanwhile)
    try:
        with schema_context("acme"):
            outcome = engine.run_advance(run.pk)
            after = Run.objects.get(pk=run.pk)
    finally:
        for lock in held:
            lock.release()
    assert outcome == "locked"  # W1's answer (ChildBusy)
    assert after.attempt == 2  # W2's claim
    assert after.status == "running", (
        f"W1, whose claim (attempt 1) W2's (attempt 2) replaced, put W2's run back to {after.status!r}"
    )


def test_redis_going_away_mid_run_puts_the_run_back_in_the_queue_not_abandoned_as_lock_lost(
    acme, triage, settings, monkeypatch
):
    """Redis goes away after step 1 and the next model call outlasts the lock: the lock is lost
    to the outage, not to another worker, so the run goes back to the queue for the task's retry
    (not abandoned as lock_lost, to be found by the sweep later and counted as a lost worker)."""
    settings.FOUNDRY_RUN_LOCK_SECONDS = 1.5
    outage = []

    def away(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    record = Attempt._record

    def record_then_redis_goes(self, step, payload):
        record(self, step, payload)
        if step["index"] == 1 and not outage:
            outage.append(1)
            for name in ("reacquire", "owned", "release", "locked", "acquire"):
                monkeypatch.setattr(Lock, name, away)

    quota = Attempt._quota

    def slow_second_model_call(self, approved):
        if outage and not getattr(self, "_slept", False):
            self._slept = True
            time.sleep(2.0)  # the model answers slowly while Redis is away
        return quota(self, approved)

    monkeypatch.setattr(Attempt, "_record", record_then_redis_goes)
    monkeypatch.setattr(Attempt, "_quota", slow_second_model_call)
    run = start(acme, triage, "Triage invoice INV-1001.")
    with schema_context("acme"):
        try:
            outcome = run_advance(run.pk)
        except RedisError as exc:
            outcome = repr(exc)
        monkeypatch.undo()
        after = Run.objects.get(pk=run.pk)
    assert outage == [1]
    assert outcome != "lock_lost" and after.status == "queued", (
        f"Redis away mid-run: the attempt returned {outcome!r} and left the run {after.status} at step "
        f"{after.step_count} (acknowledged, no retry: found by the sweep later, as a lost worker)"
    )


@pytest.mark.parametrize(
    ("text", "waits"), [("Triage invoice INV-1001.", False), ("Look up the 25,000 EUR invoice.", True)]
)
def test_a_worker_whose_run_another_claimed_before_its_end_records_no_end(acme, triage, monkeypatch, text, waits):
    """Another worker claims the run between the first one's last step and its end (the first
    stalled past its lock): the first records neither the run's end nor its wait for approval."""
    run = start(acme, triage, text)
    conclude = Attempt._conclude

    def claimed_meanwhile(self, result):
        assert (result.status == "waiting_approval") == waits
        engine._run_claim(run.pk)  # another worker took the expired lock and claimed the run
        return conclude(self, result)

    monkeypatch.setattr(Attempt, "_conclude", claimed_meanwhile)
    with schema_context("acme"):
        outcome = run_advance(run.pk)
        after = Run.objects.get(pk=run.pk)
        approvals = Approval.objects.filter(run=run).count()
    assert after.attempt == 2  # the other worker's claim
    assert (outcome, after.status, after.finished_at, approvals) == ("lock_lost", "running", None, 0)
