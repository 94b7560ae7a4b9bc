"""/readyz is public and each check opens a PostgreSQL connection: a process checks once at a
time, and reuses the answer for the probes that arrived while it ran and for
FOUNDRY_READY_CACHE_SECONDS after it (foundry/health.py `readiness_shared`). Before, every probe
opened a connection of its own, so a flood of unauthenticated probes was a flood of backends."""

import socket
import threading
import time

import pytest
from django.test import Client

from foundry import health


@pytest.fixture
def checks_counted(monkeypatch, settings):
    """The real readiness checks, counted (and made to take `slow` seconds more)."""
    settings.FOUNDRY_READY_REQUIRES_WORKER = False
    monkeypatch.setattr(health, "_shared", None)
    counted = {"checks": 0, "slow": 0.0}
    real = health.readiness

    def readiness():
        counted["checks"] += 1
        time.sleep(counted["slow"])
        return real()

    monkeypatch.setattr(health, "readiness", readiness)
    return counted


def _probe() -> int:
    return Client(HTTP_HOST="10.0.0.7").get("/readyz").status_code


def test_probes_within_the_window_share_one_check(db, settings, checks_counted):
    settings.FOUNDRY_READY_CACHE_SECONDS = 30.0
    assert [_probe() for _ in range(20)] == [200] * 20
    assert checks_counted["checks"] == 1


def test_probes_arriving_while_a_check_runs_wait_for_its_answer(db, settings, checks_counted):
    settings.FOUNDRY_READY_CACHE_SECONDS = 0.0
    checks_counted["slow"] = 0.5
    start = threading.Barrier(8)
    answers = []

    def probe():
        start.wait()
        answers.append(_probe())

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [200] * 8
    assert checks_counted["checks"] == 1


def test_a_probe_after_the_window_checks_again(db, settings, checks_counted):
    settings.FOUNDRY_READY_CACHE_SECONDS = 0.2
    assert _probe() == 200
    time.sleep(0.3)
    assert _probe() == 200
    assert checks_counted["checks"] == 2


def test_probes_do_not_wait_out_a_hung_dependency(db, settings, checks_counted):
    """A dependency that accepts connections and never answers (a frozen Redis) holds a check for
    its timeouts. Before, every probe arriving meanwhile waited the check out in a web thread of
    its own: ~8 anonymous probes held every thread of a gthread worker. Now a probe waits at most
    a second, then is answered 503 with every check `checking`; the one check still runs alone."""
    settings.FOUNDRY_READY_CACHE_SECONDS = 0.0
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(64)  # the kernel completes the handshake; nobody reads or answers
        settings.FOUNDRY_RATELIMIT_REDIS_URL = f"redis://127.0.0.1:{frozen.getsockname()[1]}/0"
        first = threading.Thread(target=_probe)
        first.start()
        while checks_counted["checks"] == 0:
            time.sleep(0.01)
        answers = []

        def probe():
            started = time.monotonic()
            response = Client(HTTP_HOST="10.0.0.7").get("/readyz")
            answers.append((response.status_code, response.json(), time.monotonic() - started))

        threads = [threading.Thread(target=probe) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        first.join(timeout=30)
    assert len(answers) == 6
    for status, body, took in answers:
        assert status == 503 and body["status"] == "unavailable", body
        assert {check["status"] for check in body["checks"].values()} == {"checking"}, body
        assert took < 1.8, f"a probe waited {took:.1f} s for a check hung on a dependency"
    assert checks_counted["checks"] == 1
