"""Runs through real Celery worker processes: end to end, approvals, cancellation, and workers
killed mid-run (SIGKILL) while the run must still complete with every step done exactly once."""

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_cancel, run_decide, run_start
from foundry.celery import app
from tests.conftest import ROOT, server_env, tenant_user, usage_rows
from tests.runs.conftest import FINANCE, TRIAGE, agent_yaml, deploy, http_tool

WORKER_ENV = {
    "FOUNDRY_RUN_LOCK_SECONDS": "2",
    "FOUNDRY_CELERY_VISIBILITY_TIMEOUT": "3",
    "FOUNDRY_CELERY_RESTORE_INTERVAL": "1",
    "FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS": "127.0.0.0/8",
}


@contextmanager
def worker(queue: str, *, concurrency: int = 1, options: tuple[str, ...] = (), **env: str):
    """A real Celery worker (prefork, `concurrency` processes) consuming `queue`, in its own process
    group; `options`: more of the worker's command-line options (its time limits, say)."""
    hostname = f"runs-{uuid.uuid4().hex[:8]}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "foundry", "worker", "--pool", "prefork"]
    command += ["--concurrency", str(concurrency), "-Q", queue, "--hostname", hostname, "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle", *options]
    proc = subprocess.Popen(command, env=server_env(**{**WORKER_ENV, **env}), cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[hostname], timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError("the Celery worker did not start")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def pool_process(proc: subprocess.Popen) -> int:
    """The pid of the worker's pool process (the one that runs tasks)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("the worker has no pool process")


@pytest.fixture
def queue(settings):
    name = f"runs-test-{uuid.uuid4().hex[:8]}"
    settings.FOUNDRY_RUNS_QUEUE = name
    return name


@pytest.fixture
def tenant(fresh_tenant, django_db_blocker):
    """A committed tenant (worker processes see only committed rows), with the db unblocked."""
    with django_db_blocker.unblock():
        yield fresh_tenant


def owner(tenant):
    return tenant_user(tenant, f"owner@{tenant.slug}.test")


def wait_for(tenant, run: Run, *statuses: str, timeout: float = 60) -> Run:
    deadline = time.monotonic() + timeout
    with schema_context(tenant.schema_name):
        while True:
            run = Run.objects.get(pk=run.pk)
            if run.status in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run still {run.status} (step {run.step_count}) after {timeout} s")
            time.sleep(0.05)


def wait_for_step(tenant, run: Run, index: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with schema_context(tenant.schema_name):
        while not Step.objects.filter(run=run, index=index).exists():
            assert time.monotonic() < deadline, f"step {index} never came"
            time.sleep(0.02)


def start(tenant, agent, text, script=None) -> Run:
    with schema_context(tenant.schema_name):
        return run_start(actor=owner(tenant), agent=agent, input=text, script=script)


def test_a_run_and_an_approval_go_through_a_real_worker(tenant, queue):
    agent = deploy(tenant, FINANCE, TRIAGE)
    with worker(queue):
        done = wait_for(tenant, start(tenant, agent, "Triage invoice INV-1001."), "succeeded", "failed")
        assert done.status == "succeeded" and done.step_count == 3
        waiting = wait_for(tenant, start(tenant, agent, "Look up the 25,000 EUR invoice."), "waiting_approval")
        with schema_context(tenant.schema_name):
            run_decide(actor=owner(tenant), run=waiting, approved=True, comment="ok")
        done = wait_for(tenant, waiting, "succeeded", "failed")
        assert done.status == "succeeded" and done.recoveries == 0
    with schema_context(tenant.schema_name):
        assert Step.objects.get(run=done, node="tool").record["approval"]["approved"] is True


def test_cancelling_a_running_run_takes_effect_within_one_step(tenant, queue, ledger):
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    ledger.delay = 0.3
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in range(20)]
    with worker(queue):
        run = start(tenant, agent, "Book twenty entries.", script)
        wait_for_step(tenant, run, 2)
        with schema_context(tenant.schema_name):
            run_cancel(actor=owner(tenant), run=run)
            at_cancel = Step.objects.filter(run=run).count()
        run = wait_for(tenant, run, "cancelled", "succeeded", "failed")
    assert (run.status, run.reason) == ("cancelled", "cancelled")
    assert run.step_count <= at_cancel + 1
    assert len(ledger.booked) <= 2


def test_a_worker_told_to_stop_puts_its_run_back_after_the_step_under_way(tenant, queue, ledger):
    """SIGTERM to the worker's main process (a deploy, `docker stop`) while a run is on the third
    of twelve one-second steps: the worker does not hold its shutdown for the rest of the run (nor
    is it killed at the stop timeout, its run recovered by the sweep minutes later). The run stops
    before its next step and goes back to the queue, not counted as a lost worker; the worker
    exits; the next worker goes on from the checkpoint and books every entry once."""
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    ledger.delay = 1.0
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in range(1, 13)]
    script.append({"respond": "Booked twelve entries."})
    with worker(queue) as first:
        run = start(tenant, agent, "Book twelve entries.", script)
        wait_for_step(tenant, run, 4)  # the second ledger call recorded, the third under way
        asked = time.monotonic()
        os.kill(first.pid, signal.SIGTERM)
        first.wait(30)
        took = time.monotonic() - asked
    with schema_context(tenant.schema_name):
        stopped = Run.objects.get(pk=run.pk)
    assert took < 6, f"the worker took {took:.1f} s to stop: it ran on"
    assert (stopped.status, stopped.recoveries) == ("queued", 0), stopped.status
    assert len(ledger.booked) <= 4
    with worker(queue):
        run = wait_for(tenant, run, "succeeded", "failed")
    assert run.status == "succeeded", run.message
    assert run.recoveries == 0
    assert ledger.booked == [f"/entries/{n}" for n in range(1, 13)]


@pytest.mark.parametrize("kill", ["pool-process", "whole-worker"])
def test_a_run_survives_its_worker_being_killed_and_does_every_step_exactly_once(tenant, queue, ledger, kill):
    """SIGKILL mid-run, while the third ledger call is in flight. pool-process: the worker's
    task process dies, the worker sees it and puts the task back (reject_on_worker_lost).
    whole-worker: every process of the worker dies, and another worker takes the task after the
    broker's visibility timeout. Either way the run completes; the two calls it had completed are
    not made again; the one in flight is made again with the same Idempotency-Key, which the
    ledger honours, so every entry is booked exactly once."""
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    ledger.hold["/entries/3"] = hold = __import__("threading").Event()
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in (1, 2, 3, 4)]
    script.append({"respond": "Booked four entries."})
    with worker(queue) as first:
        run = start(tenant, agent, "Book four entries.", script)
        assert ledger.arrived.setdefault("/entries/3", __import__("threading").Event()).wait(30)
        if kill == "pool-process":
            os.kill(pool_process(first), signal.SIGKILL)
            hold.set()
            run = wait_for(tenant, run, "succeeded", "failed")
        else:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
    if kill == "whole-worker":
        hold.set()
        with worker(queue):
            run = wait_for(tenant, run, "succeeded", "failed")

    assert run.status == "succeeded", run.message
    assert run.output == "Booked four entries."
    assert run.recoveries == 1
    assert ledger.booked == ["/entries/1", "/entries/2", "/entries/3", "/entries/4"]
    keys = {key.rsplit(":", 1)[1]: count for key, count in ledger.requests.items()}
    assert keys == {"2": 1, "4": 1, "6": 2, "8": 1}  # step 6 was in flight: sent again, same key
    with schema_context(tenant.schema_name):
        steps = list(Step.objects.filter(run=run).values_list("index", "node", "status"))
        assert [s[0] for s in steps] == list(range(1, 10))
        assert all(status == "ok" for _, _, status in steps)
        usage = usage_rows(tenant, run_id=run.pk)
        assert sorted(u.step for u in usage) == [1, 3, 5, 7, 9]
        assert run.input_tokens == sum(u.input_tokens for u in usage)
