"""A suspension whose route invalidation is lost still reaches every other web process within
the shared entry's lifetime plus the per-process TTL (apps/tenants/routing.py, docs/tenancy.md):
node A, a gunicorn caching routes as deployed, has served the workspace; another process suspends
it and its post-commit invalidation never happens — Redis unreachable for that process through
all its tries, or the process killed between COMMIT and its on-commit callbacks."""

import http.client
import subprocess
import sys
import time

import pytest

from apps.tenants.routing import SHARED_TTL_SECONDS
from tests.api.conftest import issue
from tests.conftest import ROOT, free_port, server_env, server_process

ROUTE_TTL = 2.0  # FOUNDRY_TENANT_ROUTE_TTL's default, as deployed
WITHIN = SHARED_TTL_SECONDS + ROUTE_TTL + 2.0  # the documented bound, and a request's time
PATH = "/api/v1/workspace"


@pytest.fixture(scope="module")
def node_a(django_db_setup):
    port = free_port()
    env = server_env(
        FOUNDRY_BIND=f"127.0.0.1:{port}",
        FOUNDRY_WEB_WORKERS="1",
        FOUNDRY_ACCESS_LOG="0",
        FOUNDRY_TEST_ROUTE_TTL=str(ROUTE_TTL),
    )
    log = ROOT / "test-artifacts" / f"gunicorn-route-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    with server_process(command, port=port, env=env, log=log):
        yield port


@pytest.fixture
def workspace(fresh_tenant, django_db_blocker):
    """A committed workspace of this test's own, its host and an API token of it."""
    with django_db_blocker.unblock():
        token = issue(fresh_tenant, scopes=["read"])
    return fresh_tenant.slug, f"{fresh_tenant.slug}.localhost", token


def _status(port: int, host: str, token: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", PATH, headers={"Host": host, "Authorization": f"Bearer {token}"})
    status = conn.getresponse().status
    conn.close()
    return status


def _refused_after(port: int, host: str, token: str) -> list[tuple[float, int]]:
    """Poll until node A refuses (403) or WITHIN seconds passed: the (elapsed, status) seen."""
    started, seen = time.monotonic(), []
    while True:
        status = _status(port, host, token)
        seen.append((round(time.monotonic() - started, 2), status))
        if status == 403 or seen[-1][0] > WITHIN:
            return seen
        time.sleep(0.25)


def _suspend(slug: str, *, prelude: str = "", indent: str = "") -> str:
    lines = [
        "from apps.tenants.models import Tenant",
        "from apps.tenants.services import tenant_suspend",
        f"tenant_suspend(tenant=Tenant.objects.get(slug='{slug}'), actor='operator')",
    ]
    return prelude + "".join(f"{indent}{line}\n" for line in lines)


def _other_process(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=server_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_suspension_whose_process_could_not_reach_redis_reaches_every_process(node_a, workspace):
    slug, host, token = workspace
    assert _status(node_a, host, token) == 200  # A has served it: the route is cached
    blip = (
        "import redis\n"
        "from apps.tenants import routing\n"
        "tries = []\n"
        "def unreachable(*args, **kwargs):\n"
        "    tries.append(1)\n"
        "    raise redis.exceptions.ConnectionError('Connection reset by peer')\n"
        "routing.get_redis_connection = unreachable\n"
    )
    done = _other_process(_suspend(slug, prelude=blip) + "print('tries', len(tries))\n")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tries 3" in done.stdout  # invalidation tried three times, then given up, logged
    seen = _refused_after(node_a, host, token)
    assert seen[-1][1] == 403, f"node A still serves the suspended workspace after {seen[-1][0]} s: {seen}"


def test_a_suspension_whose_process_died_after_commit_reaches_every_process(node_a, workspace):
    slug, host, token = workspace
    assert _status(node_a, host, token) == 200
    code = (
        "import os\nfrom django.db import transaction\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(137))\n" + _suspend(slug, indent="    ")
    )
    assert _other_process(code).returncode == 137
    seen = _refused_after(node_a, host, token)
    assert seen[-1][1] == 403, f"node A still serves the suspended workspace after {seen[-1][0]} s: {seen}"
