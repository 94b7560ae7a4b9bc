"""Durability at the crash points between the SIGKILL tests' (tests/runs): transient errors are
retried without counting as lost workers, a recovered parent waits for its sub-agent's locked run,
one failed lock renewal does not abandon a run, and a stalled worker whose lock was taken records
nothing (docs/runs.md, "Durability")."""

import pytest
from django.db import OperationalError
from django_redis import get_redis_connection
from django_tenants.utils import schema_context
from redis.exceptions import ConnectionError as RedisConnectionError

import apps.runs.tasks as run_tasks
from apps.billing.models import UsageRecord
from apps.billing.rls import usage_scope
from apps.runs.engine import Attempt, _run_claim, run_advance
from apps.runs.locks import LockLost, RunLock
from apps.runs.models import Run, Step
from apps.runs.services import run_create, run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, Killed, advance, agent_yaml, deploy, worker_start


def start(tenant, agent, text: str, *, script=None) -> Run:
    actor = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        return run_start(actor=actor, agent=agent, input=text, script=script)


def test_transient_database_errors_retried_by_the_task_do_not_fail_the_run_as_worker_lost(acme, triage, monkeypatch):
    """tasks.py retries a transient database or Redis error DB_RETRIES times, counted apart: the
    run goes back to the queue for each retry, so none counts as a lost worker."""
    run = start(acme, triage, "Triage invoice INV-1001.")
    graph = Attempt._graph
    blips = []

    def flaky_graph(self):
        if len(blips) < 6:  # six short outages, well under DB_RETRIES
            blips.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return graph(self)

    monkeypatch.setattr(Attempt, "_graph", flaky_graph)
    run_tasks.run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)
    with schema_context("acme"):
        run = Run.objects.get(pk=run.pk)
    assert len(blips) == 6
    assert (run.status, run.reason) == ("succeeded", ""), (run.status, run.reason, run.message)


def queued(tenant, agent, text: str, *, script=None) -> Run:
    """A queued run no task was sent for: no worker of the session (tests/conftest.py's) claims
    it while the test plays the worker."""
    with schema_context(tenant.schema_name):
        return run_create(agent=agent, input=text, created_by="test", script=script)


SUBAGENT = "    - name: ask_helper\n      type: subagent\n      description: Ask the helper.\n      agent: helper\n"


def test_a_recovered_parent_does_not_fail_its_sub_agent_step_because_the_child_is_still_locked(acme, monkeypatch):
    """A parent recovered while its sub-agent's run is still held by another worker waits for it
    (back in the queue) instead of recording the sub-agent as failed."""
    deploy(acme, FINANCE, agent_yaml("helper"))
    lead = deploy(acme, agent_yaml("lead", tools=SUBAGENT))
    script = [{"tool_call": {"tool": "ask_helper", "arguments": {"input": "What is AP?"}}}, {"respond": "done"}]
    run = start(acme, lead, "Delegate.", script=script)
    record = Attempt._record

    def record_then_die_in_child(self, step, payload):
        record(self, step, payload)
        if self.run.parent_id is not None:
            raise Killed()  # the worker dies during the sub-agent's run

    monkeypatch.setattr(Attempt, "_record", record_then_die_in_child)
    with pytest.raises(Killed):
        advance(run, "acme")
    monkeypatch.undo()
    with schema_context("acme"):
        child = Run.objects.get(parent=run)
        assert (Run.objects.get(pk=run.pk).status, child.status) == ("running", "running")

    held = RunLock("acme", str(child.pk))  # the child's lock, not expired yet / its own task holds it
    assert held.acquire()
    try:
        run = advance(run, "acme")
    finally:
        held.release()
    with schema_context("acme"):
        tool = Step.objects.filter(run=run, node="tool").first()
    assert tool is None or tool.error != "subagent_failed", (
        f"parent {run.status}; its sub-agent step recorded {tool.error}: {tool.summary!r} "
        "while the child was merely locked"
    )


def test_one_failed_lock_renewal_does_not_abandon_a_run_whose_lock_is_still_held(acme, triage, settings, monkeypatch):
    """A renewal that fails on a Redis error is tried again while the lock is still ours: the run
    goes on."""
    from redis.lock import Lock

    settings.FOUNDRY_RUN_LOCK_SECONDS = 1.5  # renewed every 0.5 s
    reacquire = Lock.reacquire
    failures = []

    def flaky_reacquire(self):
        if not failures:
            failures.append(1)
            raise RedisConnectionError("Connection reset by peer")  # one blip
        return reacquire(self)

    monkeypatch.setattr(Lock, "reacquire", flaky_reacquire)
    quota = Attempt._quota

    def slow_quota(self, approved):
        if self.run.step_count == 0 and not getattr(self, "_slept", False):
            self._slept = True
            import time

            time.sleep(0.8)  # the first step takes longer than one renewal period
        return quota(self, approved)

    monkeypatch.setattr(Attempt, "_quota", slow_quota)
    run = start(acme, triage, "Triage invoice INV-1001.")
    with schema_context("acme"):
        outcome = run_advance(run.pk)
        run = Run.objects.get(pk=run.pk)
        lock_held = RunLock("acme", str(run.pk)).held
    assert failures == [1]
    assert outcome != "lock_lost" and run.status == "succeeded", (
        f"attempt returned {outcome!r}; run left {run.status} at step {run.step_count}, lock held: {lock_held} "
        "(abandoned after one failed renewal while its lock was still valid)"
    )


def test_a_stalled_worker_whose_lock_expired_is_fenced_even_when_it_records_first(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """A worker whose lock expired and was taken while it was stalled records nothing, even when
    it wakes first: its records are fenced by the attempt number its claim set."""
    import threading

    with django_db_blocker.unblock():
        tenant = fresh_tenant
        schema = tenant.schema_name
        agent = deploy(tenant, FINANCE, agent_yaml())
        script = [
            {"tool_call": {"tool": "find_invoices", "arguments": {"question": "What is AP?"}}},
            {"respond": "done"},
        ]
        run = start(tenant, agent, "Find invoices.", script=script)
        record = Attempt._record
        a_in_step, go_a, b_in_step, go_b = (threading.Event() for _ in range(4))
        outcomes = {}

        def gated_record(self, step, payload):
            name = threading.current_thread().name
            if step["index"] == 2 and step["node"] == "tool":
                if name == "A":
                    a_in_step.set()
                    assert go_a.wait(30)
                elif name == "B":
                    b_in_step.set()
                    assert go_b.wait(30)
            return record(self, step, payload)

        monkeypatch.setattr(Attempt, "_record", gated_record)

        a = worker_start(schema, run.pk, outcomes, "A")
        assert a_in_step.wait(30)
        # A's lock expires while it is stalled (its renewer stalled with it).
        get_redis_connection("default").delete(f"foundry:run-lock:{schema}:{run.pk}")
        b = worker_start(schema, run.pk, outcomes, "B")
        assert b_in_step.wait(30), outcomes
        go_a.set()  # A wakes up first
        a.join(30)
        go_b.set()
        b.join(30)
        with schema_context(schema):
            final = Run.objects.get(pk=run.pk)
    assert outcomes.get("A") == "lock_lost", (
        f"stalled worker A (lock expired, taken over by B) returned {outcomes.get('A')!r} and B "
        f"returned {outcomes.get('B')!r}; run {final.status}, recoveries {final.recoveries}: the worker "
        "without the lock recorded the step and the run's end, the lock's holder was fenced instead"
    )


def _recorded(tenant, run) -> tuple[int, int, int, int]:
    """(steps, usage records, step_count, input_tokens) the run has now."""
    with schema_context(tenant.schema_name):
        run.refresh_from_db()
        steps = Step.objects.filter(run=run).count()
    with usage_scope(tenant.pk):
        usage = UsageRecord.objects.filter(run_id=run.pk).count()
    return steps, usage, run.step_count, run.input_tokens


def test_a_worker_whose_run_another_claimed_since_records_no_step_no_usage_and_stops(acme, triage):
    """Redis loses the run's lock (a restart without persistence) and another worker takes it and
    claims the run, moving its attempt number: the first worker's next step does not begin, and
    its record of the step it is taking writes neither the step, the counters nor the model
    call's usage — even while its lock still looks valid to it (its renewer has not run)."""
    from django.db.models import F

    run = start(acme, triage, "Triage invoice INV-1001.")
    step = {"index": 1, "node": "model", "provider": "scripted", "model": "scripted-1", "input_tokens": 40}
    with schema_context("acme"):
        lock = RunLock("acme", str(run.pk))
        assert lock.acquire()
        other = RunLock("acme", str(run.pk))
        try:
            attempt = Attempt(_run_claim(run.pk), lock)
            assert attempt._cancelled() is False  # its own claim: it may go on
            get_redis_connection("default").delete(f"foundry:run-lock:acme:{run.pk}")
            assert other.acquire()
            Run.objects.filter(pk=run.pk).update(attempt=F("attempt") + 1)  # the other worker's claim
            assert not lock.lost
            with pytest.raises(LockLost):
                attempt._cancelled()
            with pytest.raises(LockLost):
                attempt._record(step, {})
        finally:
            other.release()
            lock.release()
    assert _recorded(acme, run) == (0, 0, 0, 0)


def test_a_step_record_is_fenced_by_the_claim_in_the_database_whatever_redis_says(acme, triage):
    """The step's statement carries the claim's attempt number: with the run claimed by another
    worker since, it writes neither the step, the counters nor the usage, even while Redis still
    names this worker the lock's holder (a failover to a replica that missed the handover)."""
    from django.db.models import F

    run = start(acme, triage, "Triage invoice INV-1001.")
    step = {"index": 1, "node": "model", "provider": "scripted", "model": "scripted-1", "input_tokens": 40}
    with schema_context("acme"):
        lock = RunLock("acme", str(run.pk))
        assert lock.acquire()
        try:
            attempt = Attempt(_run_claim(run.pk), lock)
            Run.objects.filter(pk=run.pk).update(attempt=F("attempt") + 1)  # another worker's claim
            assert attempt._cancelled() is False  # Redis: the lock is still this worker's
            with pytest.raises(LockLost):
                attempt._record(step, {})
        finally:
            lock.release()
    assert _recorded(acme, run) == (0, 0, 0, 0)


def test_the_database_refuses_a_checkpoint_of_a_worker_whose_run_another_claimed_since(fresh_tenant, django_db_blocker):
    """Checkpoint writes are fenced by the claim in the database, not only by what the worker
    knows of its lock: once another worker has claimed the run, the first one's checkpoint and
    pending writes are refused (LockLost) and the thread's newest checkpoint stays what it was.
    A task's channel writes wait for the saver's next call (checkpoints.py): that call refuses them."""
    from django.db.models import F
    from langgraph.checkpoint.base import empty_checkpoint

    from apps.runs.checkpoints import checkpointer

    with django_db_blocker.unblock():
        schema = fresh_tenant.schema_name
        agent = deploy(fresh_tenant, FINANCE, agent_yaml())
        run = queued(fresh_tenant, agent, "Find invoices.", script=[{"respond": "done"}])
        config = {"configurable": {"thread_id": str(run.pk), "checkpoint_ns": ""}}
        with schema_context(schema):
            claimed = _run_claim(run.pk)  # committed, as a worker's claim is
            saver = checkpointer(schema, claim=(claimed.pk, claimed.attempt))
            first = empty_checkpoint()
            at_first = saver.put(config, first, {"step": 0}, {})
            Run.objects.filter(pk=run.pk).update(attempt=F("attempt") + 1)  # another worker's claim
            with pytest.raises(LockLost):
                saver.put(config, empty_checkpoint(), {"step": 1}, {})
            saver.put_writes(at_first, [("messages", "late")], "task-1")  # held for the next call
            with pytest.raises(LockLost):
                saver.get_tuple(config)
            with pytest.raises(LockLost):
                saver.put_writes(at_first, [("__interrupt__", "late")], "task-2")  # written at once
            reader = checkpointer(schema)
            kept = [item.checkpoint["id"] for item in reader.list(config)]
            writes = reader.get_tuple(config).pending_writes
    assert kept == [first["id"]]
    assert writes == []


@pytest.mark.parametrize("calls_before", range(8))
def test_a_call_refused_by_the_fence_leaves_the_processs_connection_usable(
    fresh_tenant, django_db_blocker, calls_before
):
    """A checkpoint call refused in the database (the fence; a purged workspace's schema) aborts
    its pipeline before its later statements reach the server. Whatever use of a statement that
    call held, the next run's calls on the same process's connection must still work: psycopg
    (3.3.9) counts a statement it meant to prepare at its threshold's use as prepared even when
    the pipeline aborted first, and every later use named a statement the server never had
    ("prepared statement _pg3_2 does not exist", seen on a Celery worker after a purge)."""
    from django.db.models import F
    from langgraph.checkpoint.base import empty_checkpoint

    from apps.runs.checkpoints import checkpoint_connection_close, checkpointer

    with django_db_blocker.unblock():
        schema = fresh_tenant.schema_name
        agent = deploy(fresh_tenant, FINANCE, agent_yaml())
        run = queued(fresh_tenant, agent, "Find invoices.", script=[{"respond": "done"}])
        config = {"configurable": {"thread_id": str(run.pk), "checkpoint_ns": ""}}
        checkpoint_connection_close()  # a new process's connection: no statement used yet
        try:
            with schema_context(schema):
                claimed = _run_claim(run.pk)
                saver = checkpointer(schema, claim=(claimed.pk, claimed.attempt))
                for step in range(calls_before):
                    saver.put(config, empty_checkpoint(), {"step": step}, {})
                Run.objects.filter(pk=run.pk).update(attempt=F("attempt") + 1)  # another worker's claim
                with pytest.raises(LockLost):
                    saver.put(config, empty_checkpoint(), {"step": calls_before}, {})
                # The worker that claimed it, in the same process (so on the same connection).
                claimed = _run_claim(run.pk)
                saver = checkpointer(schema, claim=(claimed.pk, claimed.attempt))
                for step in range(calls_before + 1, calls_before + 8):
                    saver.put(config, empty_checkpoint(), {"step": step}, {})
                newest = checkpointer(schema).get_tuple(config)
        finally:
            checkpoint_connection_close()
    assert newest.metadata["step"] == calls_before + 7


def test_a_tasks_channel_writes_are_stored_with_the_next_checkpoint_and_interrupts_at_once(acme):
    """A task's channel writes wait for the saver's next call and are written in its transaction
    (one round trip fewer per step), before the checkpoint that follows them; an interrupt, an
    error or a resume is written at once, and so is anything after it for the same checkpoint.
    Checkpoints and held writes commit without waiting for the disk on the main database; the
    rest waits, and the setting ends with the call's transaction."""
    import uuid

    from langgraph.checkpoint.base import empty_checkpoint

    from apps.runs.checkpoints import checkpoint_connection, checkpointer

    config = {"configurable": {"thread_id": f"held-{uuid.uuid4().hex}", "checkpoint_ns": ""}}
    saver, reader = checkpointer("acme"), checkpointer("acme")
    at_first = saver.put(config, empty_checkpoint(), {"step": 0}, {})

    def pending() -> list:
        return [tuple(write) for write in reader.get_tuple(at_first).pending_writes]

    saver.put_writes(at_first, [("messages", "step one")], "task-1")
    assert pending() == []
    saver.put_writes(at_first, [("__interrupt__", "approve?")], "task-2")
    assert pending() == [("task-1", "messages", "step one"), ("task-2", "__interrupt__", "approve?")]

    saver.put_writes(at_first, [("messages", "step two")], "task-3")
    saver.put(at_first, empty_checkpoint(), {"step": 1}, {})
    assert ("task-3", "messages", "step two") in pending()

    # A write for a checkpoint whose step was interrupted goes at once: no checkpoint follows it.
    saver.put_writes(at_first, [("messages", "beside the interrupt")], "task-4")
    assert ("task-4", "messages", "beside the interrupt") in pending()
    # What a graph's invocation leaves held is written by flush (AgentGraph calls it).
    at_second = saver.put(at_first, empty_checkpoint(), {"step": 2}, {})
    saver.put_writes(at_second, [("outcome", "done")], "task-5")
    assert reader.get_tuple(at_second).pending_writes == []
    saver.flush()
    assert [tuple(w) for w in reader.get_tuple(at_second).pending_writes] == [("task-5", "outcome", "done")]

    # The test database commits without waiting for the disk (tests/conftest.py); a production
    # database waits, and so does this connection outside a checkpoint's transaction.
    checkpoint_connection().execute("SET synchronous_commit = on")

    def commit_setting(putting: bool) -> str:
        saver._putting.on = putting
        try:
            with saver._cursor() as cur:
                cur.execute("SELECT current_setting('synchronous_commit') AS commit")
                return cur.fetchone()["commit"]
        finally:
            saver._putting.on = False

    assert saver.relaxed and (commit_setting(True), commit_setting(False)) == ("off", "on")  # checkpoints / the rest
    with checkpoint_connection().cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        assert cur.fetchone()["synchronous_commit"] == "on"


def test_a_soft_time_limit_during_a_database_statement_still_puts_the_run_back(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """Celery's soft time limit is an exception raised by a signal handler, wherever the worker's
    main thread is: inside a statement outside a transaction, it leaves the connection with the
    statement under way. The run must still go back to the queue, not stay `running` to be found
    later as a lost worker's (its requeue failed on that connection), and go on from there."""
    import signal

    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import connection

    record = Attempt._record

    def slow_record(self, step, usage):
        if step["index"] == 2:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(3)")  # the time limit fires in here
        return record(self, step, usage)

    def soft_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    with django_db_blocker.unblock():
        agent = deploy(fresh_tenant, FINANCE, agent_yaml())
        script = [
            {"tool_call": {"tool": "find_invoices", "arguments": {"question": "What is AP?"}}},
            {"respond": "done"},
        ]
        run = queued(fresh_tenant, agent, "Find invoices.", script=script)
        monkeypatch.setattr(Attempt, "_record", slow_record)
        previous = signal.signal(signal.SIGALRM, soft_limit)
        try:
            with schema_context(fresh_tenant.schema_name):
                signal.setitimer(signal.ITIMER_REAL, 0.5)
                with pytest.raises(SoftTimeLimitExceeded):
                    run_advance(run.pk)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        with schema_context(fresh_tenant.schema_name):
            run = Run.objects.get(pk=run.pk)
            assert run.status == "queued", run.status
            monkeypatch.setattr(Attempt, "_record", record)
            assert run_advance(run.pk) == "succeeded"  # on from its checkpoint
