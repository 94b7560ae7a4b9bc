"""A soft time limit (an exception raised by SIGALRM's handler, as Celery raises it) landing in a
checkpoint saver call while it waits for the server leaves the process's checkpoint connection
in libpq's pipeline mode with the call's results unread, neither closed nor broken:
`checkpoint_connection()` hands it to every later saver of the process, whose results are then
read against another call's statements, and later runs in the same worker process (any tenant's)
failed. Such a connection is closed (checkpoints.py, `_unsettled_closed`); the next call opens
another. Found by a review helper."""

import contextlib
import signal
import threading
import uuid

import psycopg
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from langgraph.checkpoint.base import empty_checkpoint

from apps.runs.checkpoints import _conninfo, checkpoint_connection_close, checkpointer
from apps.runs.engine import TRANSIENT
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
from tests.runs.test_engine import start


def _soft_limit(signum, frame):
    raise SoftTimeLimitExceeded()


def _interrupted_while_the_server_waits(call, table: str) -> BaseException:
    """`call()` while another session holds `table` (released after 1 s), Celery's soft time
    limit firing at 0.3 s in this (the main) thread; what it raised."""
    other = psycopg.connect(_conninfo()[0])
    other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    threading.Timer(1.0, other.close).start()  # ends the other session's transaction
    previous = signal.signal(signal.SIGALRM, _soft_limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Exception) as raised:
            call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return raised.value


@pytest.fixture
def fresh_checkpoint_connection():
    checkpoint_connection_close()
    yield
    checkpoint_connection_close()


def test_after_a_soft_time_limit_in_a_checkpoint_delete_the_next_run_of_the_process_still_runs(
    acme, globex, fresh_checkpoint_connection
):
    """A checkpoint delete (one saver call whose results are read as its pipeline ends, as are
    put, flush and retention's head detach) cut off by the soft time limit while it waits for a
    lock; the worker process's next task, another tenant's run, must run — if not at once (the
    task retries on a transient error), then at its retries in the same process. (The first
    attempt raised psycopg's "cannot exit pipeline mode while busy" and every later one ended
    the run `failed`, internal_error.)"""
    thread = f"erased-{uuid.uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    checkpointer("acme").put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})

    _interrupted_while_the_server_waits(
        lambda: checkpointer("acme").prune([thread], strategy="delete"), "acme.checkpoints"
    )

    agent = deploy(globex, FINANCE, TRIAGE)
    run = start(globex, agent, "Triage invoice INV-1001.")
    for _ in range(3):  # the run's task, tried again on a transient error (engine.TRANSIENT)
        with contextlib.suppress(*TRANSIENT):
            run = advance(run, "globex")
        if run.status != "queued":
            break
    assert run.status == "succeeded", (run.status, run.reason, run.message)


def test_after_a_soft_time_limit_in_a_checkpoint_write_a_later_read_of_another_tenant_still_works(
    acme, globex, fresh_checkpoint_connection
):
    """The same at the saver: a write cut off while it waits for the server, then another
    tenant's read on the process's connection (as a resumed run's `inspect` makes it)."""
    thread = f"poisoned-{uuid.uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for schema in ("acme", "globex"):
        checkpointer(schema).put(config, empty_checkpoint(), {"source": "input", "step": -1, "owner": schema}, {})

    _interrupted_while_the_server_waits(
        lambda: checkpointer("acme").put(
            config, empty_checkpoint(), {"source": "loop", "step": 0, "owner": "acme"}, {}
        ),
        "acme.checkpoints",
    )
    for _ in range(3):
        assert checkpointer("globex").get_tuple(config).metadata["owner"] == "globex"
