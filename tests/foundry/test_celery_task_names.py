"""The signature covers a message's body, not its headers, which name the task Celery runs: the
body names the task too (foundry/celery.py), so a message signed for one task and relabelled for
another is refused."""

import json
import uuid

from foundry.celery import app
from tests.foundry.test_celery_signing import broker, probe_ran_wait, worker  # noqa: F401 (fixture)


def _captured(task: str, args: list) -> dict:
    """A message the platform itself signed and sent, as anyone able to read Redis sees it."""
    queue = f"review-nobody-{uuid.uuid4().hex[:8]}"
    app.send_task(task, args=args, queue=queue)
    try:
        (raw,) = broker().lrange(queue, 0, -1)
    finally:
        broker().delete(queue)
    return json.loads(raw)


def _push(envelope: dict, queue: str) -> None:
    envelope["properties"]["delivery_info"]["routing_key"] = queue
    envelope["properties"]["delivery_tag"] = str(uuid.uuid4())
    broker().lpush(queue, json.dumps(envelope))


def _drained(worker, tmp_path) -> None:  # noqa: F811
    """Wait until the worker has got past everything pushed before (a signed probe runs after)."""
    after = tmp_path / f"after-{uuid.uuid4().hex[:8]}"
    app.send_task("tests.probe", args=[str(after)], queue=worker.queue)
    probe_ran_wait(after)


def test_a_signed_message_relabelled_to_another_task_is_refused(worker, tmp_path):  # noqa: F811
    """The platform signs `tenants.refresh_stats(<path>)`; an attacker with write access to Redis
    (the threat signing exists for) changes only the unsigned `task` header. The signed body still
    verifies; the body names tenants.refresh_stats, so the worker does not run the task the
    attacker chose (here the probe, which writes a file; in production, say, `lifecycle.backup`
    relabelled from a beat message with the same arguments)."""
    marker = tmp_path / f"relabelled-{uuid.uuid4().hex[:8]}"
    envelope = _captured("tenants.refresh_stats", [str(marker)])
    envelope["headers"]["task"] = "tests.probe"
    _push(envelope, worker.queue)
    _drained(worker, tmp_path)
    worker.log_wait("refused message")
    assert not marker.exists(), "a message signed for tenants.refresh_stats ran tests.probe"


def test_a_signed_message_naming_an_unknown_task_runs_nothing_and_leaves_the_worker_working(worker, tmp_path):  # noqa: F811
    marker = tmp_path / f"unknown-{uuid.uuid4().hex[:8]}"
    envelope = _captured("no.such.task", [str(marker)])
    _push(envelope, worker.queue)
    _drained(worker, tmp_path)
    worker.log_wait("no.such.task")
    assert not marker.exists()
    assert broker().llen(worker.queue) == 0
