"""What a worker looks up around each step, and how cheaply: the run's lock and cancellation signal
on a Redis connection the lock keeps (apps/runs/locks.py), and a never-claimed run's first look
for its latest checkpoint, answered without the database (apps/runs/checkpoints.py)."""

import pytest
from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from apps.runs.checkpoints import checkpointer
from apps.runs.engine import Attempt, _run_claim
from apps.runs.locks import LockLost, RunLock, cancel_signal
from apps.runs.models import Run
from tests.runs.conftest import advance
from tests.runs.test_engine import start


def _kept_client_id(lock: RunLock) -> int:
    lock._conn.send_command("CLIENT", "ID")
    return lock._conn.read_response()


def test_the_lock_asks_on_one_kept_connection_and_gives_it_back_on_release(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    pool = get_redis_connection("default").connection_pool
    lock = RunLock("acme", str(run.pk))
    assert lock.acquire()
    try:
        assert lock.check() is False
        kept = lock._conn
        assert kept is not None and kept in pool._in_use_connections
        cancel_signal("acme", [str(run.pk)])
        assert lock.check() is True
        assert lock._conn is kept  # the same connection, step after step
    finally:
        lock.release()
    assert lock._conn is None
    assert kept in pool._available_connections
    assert not kept.can_read()  # nothing left pending on it for its next user


def test_a_kept_connection_redis_closed_is_replaced_and_the_look_still_answers(acme, triage):
    """Redis drops the kept connection (a restart, a failover, `CLIENT KILL`): the next look is
    asked again through the client, with its retries, and tells the truth."""
    run = start(acme, triage, "Triage invoice INV-1001.")
    redis = get_redis_connection("default")
    lock = RunLock("acme", str(run.pk))
    assert lock.acquire()
    try:
        assert lock.check() is False
        redis.execute_command("CLIENT", "KILL", "ID", _kept_client_id(lock))
        cancel_signal("acme", [str(run.pk)])
        assert lock.check() is True
        redis.delete(f"foundry:run-lock:acme:{run.pk}")  # and the lock lost meanwhile
        with pytest.raises(LockLost):
            lock.check()
    finally:
        lock.release()


def test_a_look_interrupted_between_asking_and_reading_leaves_no_answer_for_the_pools_next_user(
    acme, triage, monkeypatch
):
    """A Celery time limit (or any exception) can land between the question and its answer: the
    kept connection is closed, not handed back with an MGET's reply waiting on it."""
    run = start(acme, triage, "Triage invoice INV-1001.")
    redis = get_redis_connection("default")
    lock = RunLock("acme", str(run.pk))
    assert lock.acquire()
    try:
        assert lock.check() is False
        kept = lock._conn

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(kept, "read_response", interrupted)
        with pytest.raises(KeyboardInterrupt):
            lock.check()
        monkeypatch.undo()
        assert lock._conn is None
        assert kept._sock is None  # closed, not pooled with the reply pending
    finally:
        lock.release()
    redis.set("foundry:test:after-interrupt", "ok")
    assert redis.get("foundry:test:after-interrupt") == b"ok"  # every pooled connection in step


def test_a_never_claimed_runs_first_look_for_a_checkpoint_asks_no_database(acme, triage, monkeypatch):
    """A run no worker claimed before has no checkpoint (only a claim lets a worker write one):
    LangGraph's first look as it starts is answered at once; every later look asks the database,
    and so does any look for another thread."""
    run = start(acme, triage, "Triage invoice INV-1001.")
    thread = str(run.pk)
    other = advance(start(acme, triage, "Triage invoice INV-1002."), "acme")
    with schema_context("acme"):
        saver = checkpointer("acme", new_thread=thread)
        asked = []
        monkeypatch.setattr(type(saver), "_cursor", lambda self, **kw: asked.append(kw) or pytest.fail("asked"))
        assert saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}}) is None
        assert asked == []
        monkeypatch.undo()
        written = checkpointer("acme").get_tuple({"configurable": {"thread_id": str(other.pk), "checkpoint_ns": ""}})
        assert written is not None
        # Another thread, or the same thread again, is looked up for real.
        assert saver.get_tuple({"configurable": {"thread_id": str(other.pk), "checkpoint_ns": ""}}) is not None
        assert saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}}) is None


def test_a_run_claimed_before_looks_for_its_checkpoint_in_the_database(acme, triage):
    """A run that waits for an approval was claimed before: resumed, it is rebuilt from its
    checkpoint, not started afresh (the short cut is only for a never-claimed run)."""
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    assert run.status == "waiting_approval"
    with schema_context("acme"):
        lock = RunLock("acme", str(run.pk))
        assert lock.acquire()
        try:
            attempt = Attempt(_run_claim(run.pk), lock)
            assert attempt.started is True
            saver = attempt._graph().graph.checkpointer
            assert saver._new_thread is None
            assert saver.get_tuple({"configurable": {"thread_id": str(run.pk), "checkpoint_ns": ""}}) is not None
        finally:
            Run.objects.filter(pk=run.pk).update(status="waiting_approval")
            lock.release()
