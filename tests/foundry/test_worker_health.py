"""/readyz and the Celery side: the broker, and workers' heartbeats (foundry/heartbeat.py) — up
while a real worker runs, down within the heartbeat's TTL once it is killed.

The worker of these tests uses a Redis server of their own as broker, so no other worker of the
test session (tests/conftest.py `celery_worker_process`) is counted."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
from django.test import Client

from foundry.heartbeat import KEY
from tests.conftest import ROOT, free_port, redis_server, server_env

TTL_SECONDS = 2


@pytest.fixture
def broker(settings):
    """A Redis server of the test's own as Celery broker: its base URL (tests/settings.py puts
    the broker of xdist worker gw0 in database 3)."""
    with redis_server() as (_proc, port):
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/3"
        yield f"redis://127.0.0.1:{port}"


def readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, response.json()


def wait_for(predicate, timeout: float):
    """Poll /readyz until `predicate(status, body)` holds; (seconds it took, status, body)."""
    started = time.monotonic()
    while True:
        status, body = readyz()
        if predicate(status, body) or time.monotonic() - started > timeout:
            return time.monotonic() - started, status, body
        time.sleep(0.1)


def start_worker(redis_base: str) -> subprocess.Popen:
    env = server_env(
        REDIS_URL=f"{redis_base}/0", PYTEST_XDIST_WORKER="gw0", FOUNDRY_WORKER_HEARTBEAT_TTL=str(TTL_SECONDS)
    )
    command = [sys.executable, "-m", "celery", "-A", "foundry", "worker", "--pool", "prefork", "--concurrency", "1"]
    command += ["-Q", f"health-{uuid.uuid4().hex[:8]}", "--hostname", "health@localhost", "--loglevel", "WARNING"]
    command += ["--without-gossip", "--without-mingle"]
    return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)


def test_it_is_ready_with_a_live_worker_and_not_once_it_stops_heartbeating(db, broker):
    status, body = readyz()
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["broker"]["status"] == "up"
    assert (body["checks"]["workers"]["status"], body["checks"]["workers"]["count"]) == ("down", 0)

    proc = start_worker(broker)
    try:
        _, status, body = wait_for(lambda status, body: body["checks"]["workers"]["status"] == "up", 60)
        assert status == 200 and body["status"] == "ready", body
        assert body["checks"]["workers"]["count"] == 1
        os.killpg(proc.pid, signal.SIGKILL)  # no clean shutdown: the key must expire
        proc.wait(timeout=10)
        took, status, body = wait_for(lambda status, body: body["checks"]["workers"]["status"] == "down", 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert status == 503
    assert (body["checks"]["workers"]["status"], body["checks"]["workers"]["count"]) == ("down", 0)
    assert took <= TTL_SECONDS + 0.5
    assert {name: check["status"] for name, check in body["checks"].items() if name != "workers"} == {
        "postgres": "up",
        "redis": "up",
        "broker": "up",
    }


def test_a_worker_that_shuts_down_cleanly_is_gone_at_once(db, broker):
    proc = start_worker(broker)
    try:
        wait_for(lambda status, body: body["checks"]["workers"]["status"] == "up", 60)
        os.killpg(proc.pid, signal.SIGTERM)  # warm shutdown: the worker deletes its key
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    status, body = readyz()
    assert (status, body["checks"]["workers"]["status"]) == (503, "down")


def test_without_a_required_worker_it_reports_workers_down_and_stays_ready(db, broker, settings):
    settings.FOUNDRY_READY_REQUIRES_WORKER = False
    status, body = readyz()
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["workers"]["status"] == "down"


def test_heartbeats_of_several_workers_are_counted(db, broker):
    client = redis.Redis.from_url(f"{broker}/3")
    now = float(client.time()[0])
    client.zadd(KEY, {"a@host": now + 5, "b@host": now + 5, "gone@host": now - 1})  # the last expired
    client.set("foundry:other", "x")
    client.close()
    status, body = readyz()
    assert status == 200
    assert body["checks"]["workers"]["status"] == "up" and body["checks"]["workers"]["count"] == 2


def test_an_unreachable_broker_is_reported_and_not_ready(db, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/3"
    settings.FOUNDRY_READY_REQUIRES_WORKER = False
    status, body = readyz()
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["broker"]["status"] == "down" and body["checks"]["broker"]["error"] == "ConnectionError"
    assert body["checks"]["workers"]["status"] == "down"
    assert (body["checks"]["postgres"]["status"], body["checks"]["redis"]["status"]) == ("up", "up")
