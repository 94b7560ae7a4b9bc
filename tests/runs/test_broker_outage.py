"""The Celery broker's Redis unavailable while a request hands work to it."""

import json
import socket
import threading
import time

import pytest

from tests.api.conftest import api, issue
from tests.runs.conftest import FINANCE, TRIAGE, deploy

BOUND_SECONDS = 10  # the readiness check gives the same Redis 2 s; the limiter 0.25 s


@pytest.fixture
def hung_broker(monkeypatch):
    """A broker address that accepts connections and never answers (a frozen Redis, or a proxy or
    load balancer in front of a dead one): the Celery app is pointed at it for this test."""
    from foundry.celery import app

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)  # the kernel completes the handshakes; nobody ever reads or writes
    monkeypatch.setattr(app.conf, "broker_url", f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    server.close()


def test_starting_a_run_while_the_broker_hangs_answers_in_bounded_time(
    acme, hung_broker, django_capture_on_commit_callbacks
):
    """POST /api/v1/runs commits the run, then hands it to the broker in the request (on_commit,
    robust: a broker that is away leaves the run to the runs sweep, docs/operations/scaling.md).
    Against a broker that accepts and never answers, the enqueue gives up within seconds
    (the broker's socket timeouts), not never: no web thread is held for good."""
    deploy(acme, FINANCE, TRIAGE)
    client = api(acme, issue(acme))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/api/v1/runs", json.dumps({"agent": "invoice-triage", "input": "hello"}), content_type="application/json"
        )
    assert response.status_code == 201, response.content
    # What the request does after its transaction commits (in production, before it answers).
    done = threading.Event()

    def enqueue():
        try:
            for callback in callbacks:
                callback()
        except Exception:  # noqa: BLE001 - an error is an answer; only a hang fails
            pass
        done.set()

    started = time.monotonic()
    threading.Thread(target=enqueue, daemon=True).start()
    assert done.wait(BOUND_SECONDS), f"the enqueue was still blocked after {time.monotonic() - started:.0f} s"
