"""Liveness and readiness, answered before host routing so load balancers can probe any node
by address: /healthz says the process is alive; /readyz checks PostgreSQL, Redis, the Celery
broker and that some worker is alive.

Workers: each live worker keeps a heartbeat key in the broker's Redis (foundry/heartbeat.py);
`workers` reports `up` and how many there are, or `down` when none has heartbeaten within
FOUNDRY_WORKER_HEARTBEAT_TTL. No worker makes /readyz 503 unless FOUNDRY_READY_REQUIRES_WORKER
is false: then it is reported but the process stays ready — for deployments that keep serving
the console and API (runs wait queued) while workers are replaced (docs/observability.md).
"""

import logging
import select
import threading
import time
from datetime import timedelta

import psycopg
import redis
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation

from foundry.heartbeat import heartbeat_client, worker_heartbeat_count
from foundry.redis_clients import redis_client

_TIMEOUT_SECONDS = 2

logger = logging.getLogger(__name__)
# What this process's last readiness answer found down (None before the first): a change is
# logged once, not every probe (a load balancer asks every few seconds while a dependency is out).
_last_down: frozenset[str] | None = None
_last_down_lock = threading.Lock()


# OPTIONS Django's backend reads itself, not libpq's connection parameters.
_DJANGO_OPTIONS = frozenset({"isolation_level", "server_side_binding", "assume_role", "pool", "prepare_threshold"})


def _check_postgres() -> None:
    """A new connection as the application's are made: DATABASE_URL's query parameters (OPTIONS:
    `sslmode`, `sslrootcert`, client certificates...) included, so TLS the application insists on
    is insisted on here too."""
    db = settings.DATABASES["default"]
    options = {k: v for k, v in (db.get("OPTIONS") or {}).items() if k not in _DJANGO_OPTIONS}
    with psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        **{**options, "connect_timeout": _TIMEOUT_SECONDS},
    ) as conn:
        _answered_within(conn.pgconn, b"SELECT 1", time.monotonic() + _TIMEOUT_SECONDS)


def _answered_within(pgconn, query: bytes, deadline: float) -> None:
    """Send `query` and wait for its answer until `deadline` (TimeoutError): connect_timeout
    bounds only the connection, and a frozen server (or a stuck pooler before it) that accepts
    connections but never answers held a probe, and its web thread, for ever."""
    pgconn.send_query(query)
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([pgconn.socket], [], [], left)[0]:
            raise TimeoutError(f"PostgreSQL did not answer within {_TIMEOUT_SECONDS} s")
    result = pgconn.get_result()
    while pgconn.get_result() is not None:  # the end of the answer
        pass
    if result is None or result.status != psycopg.pq.ExecStatus.TUPLES_OK:
        raise psycopg.OperationalError("PostgreSQL refused the readiness query")


def _check_redis() -> None:
    """REDIS_URL, and the Redis web processes use: the cache's (routes, locks) and the rate
    limiter's, without which every write is refused (docs/limits.md) — each distinct one."""
    urls = (settings.REDIS_URL, settings.CACHES["default"]["LOCATION"], settings.FOUNDRY_RATELIMIT_REDIS_URL)
    for url in dict.fromkeys(filter(None, urls)):
        client = redis_client(url, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()


def _check_broker() -> None:
    client = heartbeat_client()
    try:
        client.ping()
    finally:
        client.close()


def _check_workers() -> dict:
    client = heartbeat_client()
    try:
        count = worker_heartbeat_count(client)
    finally:
        client.close()
    return {"status": "up" if count else "down", "count": count}


def queue_depths() -> dict[str, int] | None:
    """Tasks waiting in each Celery queue of the broker (None: the broker cannot be read)."""
    queues = sorted({"celery", settings.FOUNDRY_RUNS_QUEUE})
    try:
        client = redis_client(
            settings.CELERY_BROKER_URL, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
        )
        try:
            return {queue: client.llen(queue) for queue in queues}
        finally:
            client.close()
    except redis.RedisError:
        return None


# How long past due a beat job may go unsent before the Health page calls it late: beat records
# what it sent in the database every few minutes (django_celery_beat's sync), not at once.
BEAT_LATE_SECONDS = 600


def scheduled_jobs() -> list[dict]:
    """Each job of CELERY_BEAT_SCHEDULE, when beat last sent it (django_celery_beat's
    `PeriodicTask.last_run_at`; None: never, as far as the database knows), and its state:
    `on_time`, `late` (due more than BEAT_LATE_SECONDS ago and not sent since: beat is down, or
    cannot reach the database or the broker — audit heads go unsigned, retention, purges and
    backups wait) or `never`. For the operator's Health page: beat is one process, not a
    readiness check of the web nodes."""
    from celery.schedules import schedule
    from django_celery_beat.models import PeriodicTask

    from foundry.celery import app

    names = list(settings.CELERY_BEAT_SCHEDULE)
    sent = dict(PeriodicTask.objects.filter(name__in=names).values_list("name", "last_run_at"))
    jobs = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        every = entry["schedule"]
        plan = schedule(timedelta(seconds=every), app=app) if isinstance(every, int | float) else every
        last = sent.get(name)
        if last is None:
            state = "never"
        elif plan.remaining_estimate(last).total_seconds() < -BEAT_LATE_SECONDS:
            state = "late"
        else:
            state = "on_time"
        jobs.append({"name": name, "task": entry["task"], "last_sent": last, "state": state})
    return jobs


# Each check raises when its dependency is unreachable, or returns its result (default: up).
CHECKS = {"postgres": _check_postgres, "redis": _check_redis, "broker": _check_broker, "workers": _check_workers}


def readiness() -> tuple[bool, dict]:
    """Every check's result, and whether the process is ready. Untraced: a load balancer's probe
    every few seconds would fill the trace store with single-span traces."""
    results = {}
    with suppress_instrumentation():
        for name, check in CHECKS.items():
            started = time.perf_counter()
            try:
                results[name] = check() or {"status": "up"}
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                results[name] = {"status": "down", "error": type(exc).__name__}
            results[name]["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    required = [r for name, r in results.items() if name != "workers" or settings.FOUNDRY_READY_REQUIRES_WORKER]
    return all(r["status"] == "up" for r in required), results


_shared_lock = threading.Lock()
_shared: tuple[float, bool, dict] | None = None  # (when it was answered, ready, checks)
# How long a probe waits for a check already running in this process before it is answered
# without it: a check takes milliseconds, and one that hangs on a dependency takes up to
# ~_TIMEOUT_SECONDS per connection and request, which every probe would otherwise wait out in a
# web thread of its own (a load balancer's probes, or anyone's, holding every thread).
_WAIT_SECONDS = 1.0


def readiness_shared() -> tuple[bool, dict]:
    """`readiness()` for /readyz, public and unauthenticated: one check at a time in this process,
    its answer reused by the probes that arrived while it ran (for up to _WAIT_SECONDS) and by
    those within FOUNDRY_READY_CACHE_SECONDS after it. A flood of probes (every check opens a
    PostgreSQL connection) costs the database one connection at a time per process, about one a
    second. A probe that waited _WAIT_SECONDS for a check is not ready: every check is said to be
    `checking`, since one is slower than any healthy dependency is."""
    global _shared
    arrived = time.monotonic()
    if not _shared_lock.acquire(timeout=_WAIT_SECONDS):
        return False, {name: {"status": "checking"} for name in CHECKS}
    try:
        if _shared is not None and _shared[0] >= arrived - settings.FOUNDRY_READY_CACHE_SECONDS:
            return _shared[1], _shared[2]
        ready, checks = readiness()
        _shared = (time.monotonic(), ready, checks)
        return ready, checks
    finally:
        _shared_lock.release()


def _log_change(ready: bool, checks: dict) -> None:
    """An ERROR line when readiness finds down a check it needs that was up at the last probe, an
    INFO line when all it needs is up again: once per change in this process, however often it
    is probed (the workers count only where FOUNDRY_READY_REQUIRES_WORKER). A probe answered
    while a check still runs changes nothing: that check's answer will say."""
    global _last_down
    if any(check["status"] == "checking" for check in checks.values()):
        return
    down = frozenset(
        name
        for name, check in checks.items()
        if check["status"] != "up" and (name != "workers" or settings.FOUNDRY_READY_REQUIRES_WORKER)
    )
    with _last_down_lock:
        previous, _last_down = _last_down, down
    if down == (previous or frozenset()):
        return
    if down:
        details = ", ".join(f"{name} ({checks[name].get('error', 'down')})" for name in sorted(down))
        logger.error("readiness: unavailable, %s down", details)
    else:
        logger.info("readiness: every check is up again")


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ready, checks = readiness_shared()
            response = JsonResponse(
                {"status": "ready" if ready else "unavailable", "checks": checks},
                status=200 if ready else 503,
            )
            _log_change(ready, checks)
            response._has_been_logged = True  # the change is logged above; a 503 per probe is not an error each time
            return response
        return self.get_response(request)
