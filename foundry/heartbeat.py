"""Worker heartbeats, so readiness (foundry/health.py) can tell whether any Celery worker is alive.

Each worker's main process keeps its hostname in one sorted set of the broker's Redis,
`foundry:worker-heartbeats`, scored with the moment (Redis's own clock) its heartbeat expires:
FOUNDRY_WORKER_HEARTBEAT_TTL seconds after it was written. It rewrites it every third of that
from the consumer's event loop (a Celery bootstep on the consumer's timer), dropping the entries
already expired: a worker that stops, is killed or hangs stops renewing its entry, which counts
no more once its moment has passed. A worker that shuts down cleanly removes its entry at once.
Readiness counts the entries not yet expired: a constant number of round trips, however many
keys the broker's Redis holds (task results share its database).

The bootstep is registered with the Celery app when this module is imported: workers import it
at start (CELERY_IMPORTS in settings.py), before they build their consumer; elsewhere (the web
process reads the count) the registration is never used.
"""

import contextlib
import logging

import redis
from celery import bootsteps
from django.conf import settings

from foundry.celery import app
from foundry.redis_clients import redis_client

logger = logging.getLogger(__name__)

KEY = "foundry:worker-heartbeats"
_TIMEOUT_SECONDS = 2


def heartbeat_client() -> redis.Redis:
    """A client of the broker's Redis, where heartbeats live."""
    return redis_client(
        settings.CELERY_BROKER_URL, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
    )


def _now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def worker_heartbeat_count(client: redis.Redis) -> int:
    """How many workers have heartbeaten within their TTL (two round trips)."""
    return client.zcount(KEY, f"({_now(client)}", "+inf")


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Renews this worker's heartbeat key on the consumer's timer while the consumer runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        self.member = c.hostname
        self.ttl = settings.FOUNDRY_WORKER_HEARTBEAT_TTL
        self.client = None
        self.timer_entry = None
        super().__init__(c, **kwargs)

    def start(self, c) -> None:
        self.client = heartbeat_client()
        self.beat(c.hostname)
        self.timer_entry = c.timer.call_repeatedly(self.ttl / 3, self.beat, (c.hostname,), priority=10)

    def beat(self, hostname: str) -> None:
        try:
            now = _now(self.client)
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(KEY, "-inf", now)  # workers gone without a word
                pipe.zadd(KEY, {self.member: now + self.ttl})
                pipe.expire(KEY, int(self.ttl * 10) + 1)  # no worker left: the set goes too
                pipe.execute()
        except redis.RedisError as exc:  # the broker is down: readiness says so; keep trying
            logger.warning("worker heartbeat not written: %s", type(exc).__name__)

    def stop(self, c) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        if self.client is not None:
            with contextlib.suppress(redis.RedisError):  # its entry expires on its own
                self.client.zrem(KEY, self.member)
            self.client.close()
            self.client = None

    shutdown = stop


app.steps["consumer"].add(WorkerHeartbeat)
