"""Run admission: at most `limits_for(tenant).concurrent_runs` runs of a workspace execute at once.

A worker takes one of the workspace's slots before it advances a run (`run_advance_admitted`,
called by the task in tasks.py) and gives it back when that attempt ends, however it ends: the
run finished, waits for an approval (which holds no worker and no slot), or was handed back.
A slot is a lease in Redis (foundry/ratelimit.py `Limiter.acquire`) that lives
FOUNDRY_RUN_SLOT_SECONDS unless renewed; a thread renews it every third of that while the attempt
goes on, so a crashed worker's slot comes back within FOUNDRY_RUN_SLOT_SECONDS.

A run that finds no free slot is not touched: it stays queued and its task comes back later
(FOUNDRY_RUN_SLOT_RETRY_SECONDS for each of its workspace's runs waiting per slot: its backlog
costs the shared workers no more than its slots could take; `run_slot_retry_countdown`). Its
task says in Redis, for a few of those periods, that it is alive (the mark `run_hand_out` finds set), so the sweep of
runs that lost their task (tasks.py) leaves it be however long it waits. Sub-agent runs
execute inside their parent's attempt, in its worker, on its slot.

Redis unreachable: FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS "closed" (the default) treats it as no
free slot, so nothing executes unlimited; "open" lets the run execute without a slot. A lease
that cannot be renewed (Redis away, or it ran out) does not stop the attempt: stopping mid-step
would waste what the run has spent; the workspace may be one run over its limit meanwhile.
"""

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from apps.runs.engine import run_advance
from apps.runs.models import Run
from apps.tenants.limits import limiter, limits_for
from apps.tenants.models import Tenant
from foundry.metrics import rate_limited
from foundry.ratelimit import limit_key

logger = logging.getLogger(__name__)

NO_SLOT = "no_slot"


def run_slot_key(tenant_id: int) -> str:
    """The Redis key of a workspace's run slots (a sorted set of leases)."""
    return limit_key("runs", str(tenant_id))


class RunSlot:
    """One of a workspace's run slots, held from `acquire` until `release` and kept renewed."""

    def __init__(self, tenant_id: int):
        self.key = run_slot_key(tenant_id)
        self.capacity = limits_for(tenant_id).concurrent_runs
        self.seconds = settings.FOUNDRY_RUN_SLOT_SECONDS
        self._limiter = limiter()
        self._lease: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take a free slot; False when none is (or Redis cannot be asked and admission fails closed)."""
        self._lease = self._limiter.acquire(self.key, self.capacity, self.seconds)
        if self._lease is None:
            if not self._limiter.available and settings.FOUNDRY_RATELIMIT_ON_REDIS_ERROR_RUNS == "open":
                logger.warning("run admission: Redis unreachable; the run executes without a slot")
                return True
            return False
        self._renewer = threading.Thread(target=self._renew, name="run-slot-renewer", daemon=True)
        self._renewer.start()
        return True

    def _renew(self) -> None:
        warned = False
        while not self._stop.wait(self.seconds / 3):
            if not self._limiter.renew(self.key, self._lease, self.seconds) and not warned:
                warned = True
                logger.warning("run admission: lease %s on %s not renewed; the attempt goes on", self._lease, self.key)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._lease is not None:
            self._limiter.release(self.key, self._lease)  # not held any more (or Redis away): it expires
            self._lease = None


@contextmanager
def run_slot(tenant_id: int) -> Iterator[bool]:
    """`with run_slot(tenant_id) as admitted:` a slot held for the block when `admitted`."""
    slot = RunSlot(tenant_id)
    try:
        yield slot.acquire()
    finally:
        slot.release()


def run_advance_admitted(run_id) -> str:
    """`run_advance` on one of the workspace's run slots; NO_SLOT (the run untouched, still
    queued) when none is free. Inside the run's tenant schema, as `run_advance`."""
    status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    if status is None or status in Run.FINISHED:
        return run_advance(run_id)  # nothing to execute: only records why, at once
    with run_slot(_tenant_id()) as admitted:
        if not admitted:
            rate_limited(connection.schema_name, "run")
            _waiting_mark(run_id)
            return NO_SLOT
        _waiting_unmark(run_id)
        return run_advance(run_id)


def _waiting_key(schema: str, run_id) -> str:
    return f"foundry:run-waiting:{schema}:{run_id}"


def _waiting_runs_key(schema: str) -> str:
    """The workspace's waiting runs (a sorted set: run id → when its mark lapses). A name of the
    runs' marks' own form (`…:<schema>:<word>`), which the purge's pattern takes with them."""
    return _waiting_key(schema, "runs")


RETRY_MAX_SECONDS = 600.0  # the longest a waiting run's task stays away
_WAITING_RUNS_SECONDS = 2 * RETRY_MAX_SECONDS + 60  # the set itself, renewed by every mark


def _waiting_mark(run_id) -> None:
    """Say, for a few of its retry periods, that the run's task is alive and only waits for a
    slot; and count it among its workspace's waiting runs (run_slot_retry_countdown)."""
    schema, now = connection.schema_name, time.time()
    with contextlib.suppress(RedisError):  # unsaid: the sweep may hand the run out once more
        redis = get_redis_connection("default")
        seconds = max(60, math.ceil(4 * _retry_seconds(_waiting_count(redis, schema) + 1)))
        with redis.pipeline(transaction=False) as pipe:
            pipe.set(_waiting_key(schema, run_id), "1", ex=seconds)
            pipe.zremrangebyscore(_waiting_runs_key(schema), "-inf", now)
            pipe.zadd(_waiting_runs_key(schema), {str(run_id): now + seconds})
            pipe.expire(_waiting_runs_key(schema), _WAITING_RUNS_SECONDS)
            pipe.execute()


def _waiting_count(redis, schema: str) -> int:
    return redis.zcount(_waiting_runs_key(schema), time.time(), "+inf")


def _retry_seconds(waiting: int) -> float:
    """FOUNDRY_RUN_SLOT_RETRY_SECONDS for each of the workspace's runs waiting per slot, at most
    RETRY_MAX_SECONDS (inside its tenant schema)."""
    per_slot = max(1.0, waiting / max(1, limits_for(_tenant_id()).concurrent_runs))
    return min(RETRY_MAX_SECONDS, settings.FOUNDRY_RUN_SLOT_RETRY_SECONDS * per_slot)


def run_hand_out(schema: str, run_id, seconds: float, *, claim: bool = True) -> bool:
    """Claim, for `seconds`, the handing out of a task of the run (the sweep's; it leaves the
    run be meanwhile): True for the one sweep that set the mark (two sweeps at once, from two
    beats in a rolling deploy or a redelivered sweep, send one copy, not two), False while a
    task of it waits for a slot or was handed out lately. `claim` False: set it whatever stands
    (a resumed tenant's runs all go back to workers). True when Redis cannot say: a copy too
    many is safe (the run's lock and claim), a lost run not."""
    try:
        return bool(
            get_redis_connection("default").set(
                _waiting_key(schema, run_id), "1", ex=max(1, math.ceil(seconds)), nx=claim
            )
        )
    except RedisError:
        return True


def _waiting_unmark(run_id) -> None:
    with contextlib.suppress(RedisError):
        get_redis_connection("default").zrem(_waiting_runs_key(connection.schema_name), str(run_id))


def run_slot_retry_countdown() -> float:
    """Seconds until a run refused a slot (inside its tenant schema) is tried again:
    FOUNDRY_RUN_SLOT_RETRY_SECONDS for each run of its workspace waiting per slot, at most
    RETRY_MAX_SECONDS; jittered, so the refused do not all come back at the same moment. Its
    waiting runs together then come back about once per FOUNDRY_RUN_SLOT_RETRY_SECONDS per slot,
    however many there are: a workspace's backlog costs the shared workers what its own slots
    could take, not a task every few seconds for each run it queued (one workspace's thousand
    waiting runs kept the workers from every other workspace's)."""
    try:
        waiting = _waiting_count(get_redis_connection("default"), connection.schema_name)
    except RedisError:
        waiting = 1
    return _retry_seconds(waiting) * random.uniform(0.75, 1.25)  # noqa: S311 (no secret)


def _tenant_id() -> int:
    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant) and tenant.schema_name == connection.schema_name:
        return tenant.pk  # TenantTask loaded it for this task
    return Tenant.objects.only("pk").get(schema_name=connection.schema_name).pk
