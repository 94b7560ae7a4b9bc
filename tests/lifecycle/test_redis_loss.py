"""Nothing durable lives only in Redis: a Redis that loses everything (FLUSHALL) while runs are
under way loses no run. The database holds every run; what Redis held — the task message, the
run's lock and slot — is re-created from it: the runs sweep (beat `runs.sweep`, which sends
`runs.sweep_tenant` for every active workspace) re-queues a run whose task is gone.

The platform's processes here (a real Celery worker, and `manage.py shell` for what a web
request would do) use a Redis server of this module's own as broker and cache, so the flush
reaches no other test.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import redis
from django.db import connection
from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from foundry.heartbeat import worker_heartbeat_count
from tests.conftest import ROOT, redis_server, server_env
from tests.runs.conftest import FINANCE, TRIAGE, Ledger, agent_yaml, deploy, http_tool
from tests.runs.test_worker import WORKER_ENV, wait_for

BROKER_DB = 3  # tests/settings.py: the broker of xdist worker gw0, which these processes pose as


@pytest.fixture
def tenant(fresh_tenant, django_db_blocker):
    with django_db_blocker.unblock():
        yield fresh_tenant


@pytest.fixture
def ledger():
    service = Ledger()
    yield service
    service.close()


@pytest.fixture
def own_redis():
    """(environment of the platform's processes, a client of their broker's Redis)."""
    with redis_server() as (_proc, port):
        broker = f"redis://127.0.0.1:{port}/{BROKER_DB}"
        # Celery prefers CELERY_BROKER_URL from the environment over its settings: set it too.
        env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "PYTEST_XDIST_WORKER": "gw0"}
        env |= {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker}
        client = redis.Redis(port=port, db=BROKER_DB)
        yield env, client
        client.close()


@contextmanager
def worker(env: dict[str, str], client: redis.Redis):
    """A real Celery worker on the default queue of `env`'s broker, in its own process group."""
    command = [sys.executable, "-m", "celery", "-A", "foundry", "worker", "--pool", "prefork", "--concurrency", "1"]
    command += ["--hostname", f"flush-{uuid.uuid4().hex[:8]}@localhost", "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle"]
    proc = subprocess.Popen(command, env=server_env(**WORKER_ENV, **env), cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not worker_heartbeat_count(client):  # its heartbeat: it consumes
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RuntimeError("the Celery worker did not start")
        time.sleep(0.1)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def platform(env: dict[str, str], script: str) -> str:
    """`script` in a process of the platform (as a web request would run it); its last line printed."""
    command = [sys.executable, "manage.py", "shell", "-c", script]
    done = subprocess.run(command, env=server_env(**env), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def run_start(env, tenant, agent: str, text: str, script: list | None = None) -> Run:
    """`run_start` as the API calls it, in a process of the platform; the run."""
    started = platform(
        env,
        "import json\n"
        "from django_tenants.utils import schema_context\n"
        "from apps.accounts.models import User\n"
        "from apps.catalog.models import Document\n"
        "from apps.runs.services import run_start\n"
        f"with schema_context({tenant.schema_name!r}):\n"
        f"    owner = User.objects.get(email='owner@{tenant.slug}.test')\n"
        f"    agent = Document.objects.get(name={agent!r}, kind='agent')\n"
        f"    run = run_start(actor=owner, agent=agent, input={text!r}, script=json.loads({json.dumps(script)!r}))\n"
        "print(run.pk)",
    )
    with schema_context(tenant.schema_name):
        return Run.objects.get(pk=started)


def sweep(env, tenant) -> None:
    """What beat's `runs.sweep` sends for each active workspace (only this one here)."""
    platform(env, f"from apps.runs.tasks import run_sweep_tenant; run_sweep_tenant.delay({tenant.schema_name!r})")


def stranded_for(tenant, run: Run, minutes: int) -> None:
    """Time passes: the run has not moved for `minutes` (the sweep's staleness window is minutes)."""
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE runs_run SET updated_at = updated_at - make_interval(mins => %s) WHERE id = %s", [minutes, run.pk]
        )


def test_a_run_executing_when_redis_is_flushed_is_requeued_from_the_database_and_completes(tenant, own_redis, ledger):
    env, client = own_redis
    deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    ledger.hold["/entries/2"] = hold = threading.Event()
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in (1, 2, 3)]
    script.append({"respond": "Booked three entries."})
    with worker(env, client):
        run = run_start(env, tenant, "clerk", "Book three entries.", script)
        assert ledger.arrived.setdefault("/entries/2", threading.Event()).wait(30)
        client.flushall()  # the task message, the run's lock and slot: all gone mid-step
        time.sleep(1.5)  # the lock's holder notices it lost the lock (renewed every 2/3 s)
        hold.set()
        deadline = time.monotonic() + 10
        while ledger.requests["/entries/2"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        with schema_context(tenant.schema_name):
            stranded = Run.objects.get(pk=run.pk)
            assert stranded.status == "running"  # left to whoever holds the lock; nobody does
            assert not Step.objects.filter(run=run, index__gt=4).exists()
        assert client.llen("celery") == 0  # nothing in Redis would ever bring it back

        stranded_for(tenant, run, 6)
        sweep(env, tenant)
        run = wait_for(tenant, run, "succeeded", "failed")

    assert run.status == "succeeded", run.message
    assert run.output == "Booked three entries."
    assert run.recoveries == 1
    assert ledger.booked == ["/entries/1", "/entries/2", "/entries/3"]  # each once (Idempotency-Key)
    with schema_context(tenant.schema_name):
        steps = list(Step.objects.filter(run=run).order_by("index").values_list("index", "status"))
    assert [index for index, _ in steps] == list(range(1, 8)) and {status for _, status in steps} == {"ok"}


def test_a_queued_run_whose_task_was_flushed_is_requeued_from_the_database_and_completes(tenant, own_redis):
    env, client = own_redis
    agent = deploy(tenant, FINANCE, TRIAGE)
    run = run_start(env, tenant, agent.name, "Triage invoice INV-1001.")  # no worker yet: it waits in Redis
    assert client.llen("celery") == 1
    client.flushall()
    with worker(env, client):
        time.sleep(2)
        with schema_context(tenant.schema_name):
            assert Run.objects.get(pk=run.pk).status == "queued"  # its task is gone with Redis
        stranded_for(tenant, run, 31)
        sweep(env, tenant)
        run = wait_for(tenant, run, "succeeded", "failed")
    assert (run.status, run.step_count, run.recoveries) == ("succeeded", 3, 0)


def test_a_run_waiting_for_approval_holds_nothing_in_redis_and_completes_after_a_flush(tenant, own_redis):
    env, client = own_redis
    agent = deploy(tenant, FINANCE, TRIAGE)
    with worker(env, client):
        run = wait_for(
            tenant, run_start(env, tenant, agent.name, "Look up the 25,000 EUR invoice."), "waiting_approval"
        )
        client.flushall()
        platform(
            env,
            "from django_tenants.utils import schema_context\n"
            "from apps.accounts.models import User\n"
            "from apps.runs.models import Run\n"
            "from apps.runs.services import run_decide\n"
            f"with schema_context({tenant.schema_name!r}):\n"
            f"    owner = User.objects.get(email='owner@{tenant.slug}.test')\n"
            f"    run_decide(actor=owner, run=Run.objects.get(pk='{run.pk}'), approved=True, comment='ok')\n"
            "print('decided')",
        )
        run = wait_for(tenant, run, "succeeded", "failed")
    assert run.status == "succeeded" and run.recoveries == 0
    with schema_context(tenant.schema_name):
        assert Step.objects.get(run=run, node="tool").record["approval"]["approved"] is True
