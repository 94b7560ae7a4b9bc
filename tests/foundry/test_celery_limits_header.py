"""foundry/celery.py `unsigned_limits_dropped` runs in GuardedConsumer before Celery's own handling
of a message: a forged message of any shape leaves the worker working."""

import uuid
from pathlib import Path

from tests.foundry.test_broker_envelopes import _still_working, worker  # noqa: F401 (fixture)
from tests.foundry.test_celery_signing import inject


def test_a_message_without_task_or_id_headers_but_with_a_timelimit_does_not_stop_the_worker(worker, tmp_path):  # noqa: F811
    """A message written into Redis without the key, with no `task` and no `id` header but a
    `timelimit`, is left to Celery's own handling (refused and logged) and the worker goes on. It
    used to reach the time-limit reset, whose log line read `headers["id"]` (KeyError) outside the
    consumer's try/except: kombu held the message unacknowledged and the worker took no more."""
    marker = Path(tmp_path) / f"forged-{uuid.uuid4().hex[:8]}"
    inject(
        worker.queue,
        marker,
        content_type="application/json",
        body=b"[[], {}, {}]",
        changed={"task": None, "id": None, "timelimit": [1, None]},
    )
    _still_working(worker, tmp_path)
