"""Worker heartbeats, so readiness (foundry/health.py) can tell whether any Celery worker is alive.

Each worker's main process writes a key of its own in the broker's Redis —
`foundry:worker-heartbeat:<hostname>`, holding its hostname, pid and the time — that expires
after FOUNDRY_WORKER_HEARTBEAT_TTL seconds, and rewrites it every third of that from the
consumer's event loop (a Celery bootstep on the consumer's timer): a worker that stops, is
killed or hangs stops renewing it, and its key is gone within the TTL. A worker that shuts down
cleanly deletes its key at once.

The bootstep is registered with the Celery app when this module is imported: workers import it
at start (CELERY_IMPORTS in settings.py), before they build their consumer; elsewhere (the web
process reads the count) the registration is never used.
"""

import contextlib
import json
import logging
import os
import time

import redis
from celery import bootsteps
from django.conf import settings

from foundry.celery import app
from foundry.redis_clients import redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "foundry:worker-heartbeat:"
_TIMEOUT_SECONDS = 2


def heartbeat_client() -> redis.Redis:
    """A client of the broker's Redis, where heartbeats live."""
    return redis_client(
        settings.CELERY_BROKER_URL, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
    )


def worker_heartbeat_count(client: redis.Redis) -> int:
    """How many workers have heartbeaten within their TTL."""
    return sum(1 for _ in client.scan_iter(match=f"{KEY_PREFIX}*", count=100))


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Renews this worker's heartbeat key on the consumer's timer while the consumer runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        self.key = f"{KEY_PREFIX}{c.hostname}"
        self.ttl = settings.FOUNDRY_WORKER_HEARTBEAT_TTL
        self.client = None
        self.timer_entry = None
        super().__init__(c, **kwargs)

    def start(self, c) -> None:
        self.client = heartbeat_client()
        self.beat(c.hostname)
        self.timer_entry = c.timer.call_repeatedly(self.ttl / 3, self.beat, (c.hostname,), priority=10)

    def beat(self, hostname: str) -> None:
        value = json.dumps({"hostname": hostname, "pid": os.getpid(), "at": time.time()})
        try:
            self.client.set(self.key, value, px=int(self.ttl * 1000))
        except redis.RedisError as exc:  # the broker is down: readiness says so; keep trying
            logger.warning("worker heartbeat not written: %s", type(exc).__name__)

    def stop(self, c) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        if self.client is not None:
            with contextlib.suppress(redis.RedisError):  # the key expires on its own
                self.client.delete(self.key)
            self.client.close()
            self.client = None

    shutdown = stop


app.steps["consumer"].add(WorkerHeartbeat)
