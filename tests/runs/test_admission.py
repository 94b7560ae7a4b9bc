"""Run admission (apps/runs/admission.py): a workspace's runs execute on its run slots, leases in
the real Redis. Most tests advance the run in this process, as the task does; the last one runs
N + 1 runs through a real Celery worker with N + 1 processes."""

import threading
import time
import uuid

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.runs.admission import NO_SLOT, RunSlot, run_advance_admitted, run_slot_key
from apps.runs.models import Run
from apps.runs.services import run_create
from apps.tenants.limits import limiter, limits_cache_clear
from tests.conftest import free_port
from tests.runs.conftest import FINANCE, TRIAGE, agent_yaml, deploy, http_tool
from tests.runs.test_worker import start, wait_for, worker

DONE = "Triage invoice INV-1001."
APPROVAL = "Look up the 25,000 EUR invoice."


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


@pytest.fixture
def agent(acme):
    return deploy(acme, FINANCE, TRIAGE)


def slots(slug: str, n: int) -> None:
    call_command("tenant_limits", slug, "--concurrent-runs", str(n))


def queued(tenant, agent, text: str = DONE) -> Run:
    with schema_context(tenant.schema_name):
        return run_create(agent=agent, input=text, created_by="test")


def admit(tenant, run: Run) -> tuple[str, Run]:
    """Advance the run here on a slot, as the task does: what it answered, and the run then."""
    with schema_context(tenant.schema_name):
        answer = run_advance_admitted(run.pk)
        return answer, Run.objects.get(pk=run.pk)


def held(tenant) -> int:
    """Unexpired leases on the workspace's run slots."""
    return limiter()._redis.zcount(run_slot_key(tenant.pk), f"({time.time() * 1e6:.0f}", "+inf")


def test_it_gives_the_slot_back_when_the_run_ends(acme, agent):
    slots("acme", 1)
    for _ in range(2):  # the second would find no slot if the first had kept it
        answer, run = admit(acme, queued(acme, agent))
        assert (answer, run.status, run.step_count) == ("succeeded", "succeeded", 3)
    assert held(acme) == 0


def test_a_run_waiting_for_an_approval_holds_no_slot(acme, agent):
    slots("acme", 1)
    answer, waiting = admit(acme, queued(acme, agent, APPROVAL))
    assert (answer, waiting.status) == ("waiting_approval", "waiting_approval")
    assert held(acme) == 0
    assert admit(acme, queued(acme, agent))[0] == "succeeded"


def test_a_run_without_a_free_slot_stays_queued_and_untouched(acme, agent):
    slots("acme", 1)
    lease = limiter().acquire(run_slot_key(acme.pk), 1, 60)
    answer, run = admit(acme, queued(acme, agent))
    assert answer == NO_SLOT
    assert (run.status, run.started_at, run.step_count, run.recoveries) == ("queued", None, 0, 0)
    limiter().release(run_slot_key(acme.pk), lease)
    assert admit(acme, run)[1].status == "succeeded"


def test_a_crashed_workers_slot_comes_back_after_its_ttl(acme, agent, settings):
    settings.FOUNDRY_RUN_SLOT_SECONDS = 0.4
    slots("acme", 1)
    taken = time.monotonic()
    assert limiter().acquire(run_slot_key(acme.pk), 1, 0.4)  # its holder dies: never renewed nor released
    run = queued(acme, agent)
    answers = []
    while (answer := admit(acme, run)[0]) == NO_SLOT:
        answers.append(answer)
        time.sleep(0.05)
    assert answer == "succeeded"
    assert answers and 0.35 <= time.monotonic() - taken < 3


def test_a_slot_held_is_renewed_past_its_ttl_until_released(acme, settings):
    settings.FOUNDRY_RUN_SLOT_SECONDS = 0.3
    slots("acme", 1)
    slot = RunSlot(acme.pk)
    assert slot.acquire()
    time.sleep(0.8)  # more than twice its TTL
    assert held(acme) == 1
    assert not RunSlot(acme.pk).acquire()
    slot.release()
    assert held(acme) == 0


def test_a_workspace_at_its_limit_does_not_hold_back_another(acme, globex, agent):
    slots("acme", 1)
    assert limiter().acquire(run_slot_key(acme.pk), 1, 60)
    assert admit(acme, queued(acme, agent))[0] == NO_SLOT
    globex_agent = deploy(globex, FINANCE, TRIAGE)
    assert admit(globex, queued(globex, globex_agent))[0] == "succeeded"


def test_redis_unreachable_runs_wait_queued_by_default(acme, agent, settings):
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    answer, run = admit(acme, queued(acme, agent))
    assert (answer, run.status, run.step_count) == (NO_SLOT, "queued", 0)


def test_redis_unreachable_runs_execute_without_a_slot_when_set_open(acme, agent, settings):
    settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS = "open"
    assert admit(acme, queued(acme, agent))[0] == "succeeded"


def test_a_finished_run_needs_no_slot(acme, agent):
    slots("acme", 1)
    run = admit(acme, queued(acme, agent))[1]
    assert limiter().acquire(run_slot_key(acme.pk), 1, 60)
    assert admit(acme, run)[0] == "succeeded"  # a second delivery: answered at once, no slot asked


@pytest.fixture
def committed(fresh_tenant, django_db_blocker, settings):
    """A committed tenant (worker processes see only committed rows) and a queue of this test's own."""
    settings.FOUNDRY_RUNS_QUEUE = f"runs-test-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        yield fresh_tenant


def test_with_n_slots_exactly_n_of_n_plus_one_runs_execute_at_once(committed, ledger, settings):
    tenant = committed
    slots(tenant.slug, 2)
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    paths = [f"/entries/{n}" for n in range(3)]
    ledger.hold = {path: threading.Event() for path in paths}  # each run waits in its ledger call

    def arrived() -> list[str]:
        return [path for path in paths if path in ledger.arrived and ledger.arrived[path].is_set()]

    def arrivals_wait(count: int) -> list[str]:
        deadline = time.monotonic() + 30
        while len(arrived()) < count:
            assert time.monotonic() < deadline, f"only {arrived()} executing"
            time.sleep(0.02)
        return arrived()

    runs = [
        start(tenant, agent, f"Book entry {n}.", [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}}])
        for n in range(3)
    ]
    with worker(settings.FOUNDRY_RUNS_QUEUE, concurrency=3, FOUNDRY_RUN_SLOT_RETRY_SECONDS="0.2"):
        executing = arrivals_wait(2)
        time.sleep(1.0)  # the third run is refused a slot several times meanwhile
        assert arrived() == executing and held(tenant) == 2
        (waiting,) = (run for run, path in zip(runs, paths, strict=True) if path not in executing)
        with schema_context(tenant.schema_name):
            assert Run.objects.get(pk=waiting.pk).status == "queued"
        ledger.hold[executing[0]].set()  # one run ends: its slot goes to the waiting one
        assert len(arrivals_wait(3)) == 3
        assert held(tenant) == 2
        for event in ledger.hold.values():
            event.set()
        ended = [wait_for(tenant, run, "succeeded", "failed", timeout=30) for run in runs]
    assert [run.status for run in ended] == ["succeeded"] * 3
    assert held(tenant) == 0
