"""Runs on a real Celery worker whose tasks are limited by Celery's time limits (an operator's
`celery worker --soft-time-limit N` / `--time-limit N`, or `celery control time_limit`).

docs/runs.md ("Durability"): delivery is at least once, a re-delivered run resumes from its last
checkpoint, a task whose worker process is killed is "put back at once" (reject_on_worker_lost),
and `internal_error` is for "an unexpected error (a bug, a library fault)". A time limit is
neither a bug nor a reason to leave a run behind: the run must be handed back to a worker and
go on from its checkpoint, the completed steps not done again."""

import threading
import time

from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from tests.runs.conftest import FINANCE, agent_yaml, deploy, http_tool, ledger  # noqa: F401 - fixture
from tests.runs.test_worker import queue, start, tenant, wait_for, worker  # noqa: F401 - fixtures


def limited_worker(name: str, *limits: str):
    """A real prefork worker (one process) consuming queue `name`, with Celery's time-limit options
    and the production visibility timeout (no second copy of the task is handed out meanwhile)."""
    return worker(name, options=limits, FOUNDRY_CELERY_VISIBILITY_TIMEOUT="3600")


def booking_run(tenant, ledger):  # noqa: F811
    """A run booking three ledger entries (steps 2, 4, 6 are the calls), whose second call
    (/entries/2, step 4) the ledger holds until the returned event is set."""
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    ledger.hold["/entries/2"] = hold = threading.Event()
    arrived = ledger.arrived.setdefault("/entries/2", threading.Event())
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in (1, 2, 3)]
    script.append({"respond": "Booked three entries."})
    return start(tenant, agent, "Book three entries.", script), hold, arrived


def test_a_soft_time_limit_mid_step_does_not_fail_the_run_as_an_internal_error(tenant, queue, ledger):  # noqa: F811
    """Celery raises SoftTimeLimitExceeded inside the task while the run's second ledger call is
    in flight: the run goes back to the queue, the task is sent again at once, and the run goes on
    from its checkpoint. (It was caught as an unexpected error: `failed` / `internal_error`.)"""
    with limited_worker(queue, "--soft-time-limit", "3"):
        run, hold, arrived = booking_run(tenant, ledger)
        assert arrived.wait(30)
        time.sleep(4)  # the soft limit (3 s from the task's start) fires while the call is held
        hold.set()
        deadline = time.monotonic() + 30
        with schema_context(tenant.schema_name):
            while True:
                run = Run.objects.get(pk=run.pk)
                if run.is_finished or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            steps = list(Step.objects.filter(run=run).values_list("index", flat=True))
    assert (run.status, run.reason) != ("failed", "internal_error"), (
        f"a Celery soft time limit ended the run as an internal error at step {run.step_count} "
        f"(steps recorded {steps}; ledger booked {ledger.booked})"
    )
    assert run.status == "succeeded", f"run {run.status} ({run.reason}: {run.message})"
    assert ledger.booked == ["/entries/1", "/entries/2", "/entries/3"]


def test_a_hard_time_limit_puts_the_run_back_like_any_killed_worker_process(tenant, queue, ledger):  # noqa: F811
    """The hard time limit fires while the second ledger call is in flight: Celery SIGKILLs the
    pool process, exactly as `reject_on_worker_lost` is there for. Expected (docs/runs.md: the
    task is "put back at once when its worker process is killed"): the same worker's next pool
    process takes the run up from its checkpoint once the lock expires (2 s here) and completes
    it, the in-flight call made again with the same Idempotency-Key. (Celery acknowledged a task
    that hit its hard time limit — `acks_on_timeout` falls back to `acks_on_failure_or_timeout`,
    True — so the run stayed `running` with no task until the `runs.sweep` beat job found it.)"""
    with limited_worker(queue, "--time-limit", "4"):
        run, hold, arrived = booking_run(tenant, ledger)
        assert arrived.wait(30), wait_for(tenant, run, "no such status", timeout=0)
        time.sleep(5)  # killed by the hard limit meanwhile
        hold.set()
        run = wait_for(tenant, run, "succeeded", "failed", "cancelled", timeout=25)
    assert run.status == "succeeded" and run.recoveries >= 1, run.message
    assert ledger.booked == ["/entries/1", "/entries/2", "/entries/3"]


def test_a_step_longer_than_the_workers_soft_time_limit_still_ends_at_the_runs_own_time_limit(tenant, queue, ledger):  # noqa: F811
    """docs/runs.md: the run's time limit counts the "time spent running — model and tool calls",
    and a soft time limit "puts the run back in the queue ... it goes on from its checkpoint".
    A tool call that outlasts the worker's soft time limit (2 s) is cut off and the run requeued,
    the time that call ran kept (`Run.interrupted_ms`): the run (limit: 3 s) ends `failed` /
    `timeout` once its attempts have taken its 3 s, instead of making the same call for ever."""
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port), limits="  limits: {timeout_seconds: 3}\n"))
    ledger.hold["/entries/1"] = threading.Event()  # the service answers only after its 5 s timeout
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "Booked."}]
    with limited_worker(queue, "--soft-time-limit", "2"):
        run = start(tenant, agent, "Book an entry.", script)
        deadline = time.monotonic() + 25  # the run's 3 s, eight times over
        with schema_context(tenant.schema_name):
            while time.monotonic() < deadline:
                run = Run.objects.get(pk=run.pk)
                if run.is_finished:
                    break
                time.sleep(0.2)
            steps = list(Step.objects.filter(run=run).values_list("index", "node", "status"))
        ledger.hold["/entries/1"].set()
    time.sleep(0.5)  # the held requests are counted as they are let go
    outcome, calls = (run.status, run.reason, run.step_count), sum(ledger.requests.values())
    assert outcome[:2] == ("failed", "timeout"), (
        f"after 25 s the run (time limit 3 s) is {outcome} (status, reason, steps), its one tool call "
        f"made {calls} times so far (steps recorded: {steps})"
    )
