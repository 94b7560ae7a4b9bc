"""A message's task name is taken from its signed body only (foundry/celery.py FoundryTask): a
captured message without the name in its body (one signed before it was put there, or forged by
leaving it out) and relabelled with headers naming another task, the `_foundry_task` one
included, runs nothing."""

import json
import uuid

from celery.signals import before_task_publish

from foundry.celery import _task_name_bind, app
from tests.foundry.test_celery_signing import broker, probe_ran_wait, worker  # noqa: F401 (fixture)


def _captured_without_binding(task: str, args: list) -> dict:
    """A message as the platform signed it before this change (no task name in its body)."""
    queue = f"review-nobody-{uuid.uuid4().hex[:8]}"
    before_task_publish.disconnect(_task_name_bind)
    try:
        app.send_task(task, args=args, queue=queue)
    finally:
        before_task_publish.connect(_task_name_bind)
    try:
        (raw,) = broker().lrange(queue, 0, -1)
    finally:
        broker().delete(queue)
    return json.loads(raw)


def test_an_old_signed_message_relabelled_with_a_forged_name_header_is_refused(worker, tmp_path):  # noqa: F811
    marker = tmp_path / f"relabelled-{uuid.uuid4().hex[:8]}"
    envelope = _captured_without_binding("tenants.refresh_stats", [str(marker)])
    envelope["headers"]["task"] = "tests.probe"
    for key in ("foundry_task", "_foundry_task"):  # unsigned: any Redis writer sets them
        envelope["headers"][key] = "tests.probe"
    envelope["properties"]["delivery_info"]["routing_key"] = worker.queue
    envelope["properties"]["delivery_tag"] = str(uuid.uuid4())
    broker().lpush(worker.queue, json.dumps(envelope))
    after = tmp_path / f"after-{uuid.uuid4().hex[:8]}"
    app.send_task("tests.probe", args=[str(after)], queue=worker.queue)
    probe_ran_wait(after)
    assert not marker.exists(), "a message signed for tenants.refresh_stats ran tests.probe (name taken from a header)"
