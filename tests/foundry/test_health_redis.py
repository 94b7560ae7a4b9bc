"""/readyz checks the Redis the platform uses (the cache's and the rate limiter's, beside REDIS_URL), and
under Sentinel a lost sentinel costs each check a fraction of its 2 s (docs/observability.md, "Health")."""

import pytest
from django.test import Client

from tests.api.conftest import api, issue
from tests.conftest import redis_server


@pytest.fixture
def cache_redis(settings):
    """The Django cache (and with it the rate limiter: FOUNDRY_RATELIMIT_REDIS_URL defaults to
    FOUNDRY_CACHE_URL) on a Redis server of the test's own, so it can be stopped for real while
    REDIS_URL and the broker stay up."""
    with redis_server() as (proc, port):
        caches = {**settings.CACHES}
        caches["default"] = {**caches["default"], "LOCATION": f"redis://127.0.0.1:{port}/1"}
        settings.CACHES = caches
        settings.FOUNDRY_RATELIMIT_REDIS_URL = ""
        yield proc


def test_readyz_reports_the_redis_the_platform_uses_when_it_is_down(acme, settings, cache_redis):
    """README's configuration table: REDIS_URL is only "Redis (readiness check; Celery default)";
    the Redis web processes actually use is FOUNDRY_CACHE_URL ("Django cache, rate-limit
    counters, route cache") and, by default, FOUNDRY_RATELIMIT_REDIS_URL. docs/limits.md: when
    that Redis is unreachable, every API write, MCP tools/call and console form post is refused
    with 503 `rate_limiter_unavailable`. /readyz ("PostgreSQL, Redis and the Celery broker
    reachable", docs/operations/deployment.md) pings REDIS_URL only, so with the platform's Redis
    down it still answers 200 with every check `up`: load balancers keep routing writes to
    processes that refuse them all, and the operator Health page says Redis is up.
    Expected: a check (e.g. `cache`/`ratelimit`) reports that Redis `down`."""
    settings.FOUNDRY_READY_REQUIRES_WORKER = False
    assert Client().get("/readyz").status_code == 200
    cache_redis.terminate()
    cache_redis.wait(timeout=10)

    write = api(acme, issue(acme)).post("/api/v1/runs", {"agent": "nope", "input": {}}, content_type="application/json")
    assert write.status_code == 503, (write.status_code, write.content[:200])  # the outage is real

    body = Client().get("/readyz").json()
    down = {name for name, check in body["checks"].items() if check["status"] != "up" and name != "workers"}
    assert down, f"/readyz reports every check up while the cache/rate-limit Redis is down: {body}"


@pytest.fixture
def sentinel_with_one_node_lost(settings, tmp_path):
    """A Redis master and a live sentinel of the test's own, listed after a sentinel that is lost
    (a frozen process or a partitioned node: it accepts the connection, never answers)."""
    import os
    import signal
    import socket
    import subprocess
    import time

    import redis

    from tests.conftest import free_port

    master, sentinel = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor m 127.0.0.1 {master} 1\n")
    procs = [
        subprocess.Popen(
            ["redis-server", "--port", str(master), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        ),
        subprocess.Popen(
            ["redis-server", str(conf), "--sentinel"], cwd=tmp_path, stdout=subprocess.DEVNULL, start_new_session=True
        ),
    ]
    lost = socket.socket()
    lost.bind(("127.0.0.1", 0))
    lost.listen(64)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis(port=sentinel, socket_timeout=1).sentinel_get_master_addr_by_name("m"):
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "sentinel did not start"
            time.sleep(0.1)
        settings.FOUNDRY_REDIS_SENTINELS = [("127.0.0.1", lost.getsockname()[1]), ("127.0.0.1", sentinel)]
        settings.FOUNDRY_REDIS_SENTINEL_MASTER = "m"
        settings.REDIS_URL = "redis://nowhere.invalid:1/0"
        settings.CELERY_BROKER_URL = "redis://nowhere.invalid:1/3"
        yield
    finally:
        lost.close()
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_readyz_checks_stay_within_2_s_under_sentinel_with_one_sentinel_lost(db, settings, sentinel_with_one_node_lost):
    """docs/observability.md: `redis` is up when REDIS_URL "answers PING within 2 s", `broker`
    likewise; docs/operations/scaling.md: under Sentinel every client (health checks included)
    asks the sentinels for the master and so survives losing one node. With the first of two
    sentinels lost (accepts, never answers) and the master healthy, each of `redis`, `broker`
    and `workers` takes ~25 s (a whole probe ~76 s) and still says `up`: redis-py's Sentinel
    builds its per-sentinel clients with redis-py's default Retry (3 retries, exponential
    backoff) because `_sentinel_kwargs` (foundry/redis_clients.py) sets only the timeouts, and
    the checks build a new Sentinel per check per probe, so nothing remembers the live one.
    A probe that slow fails any orchestrator's probe timeout on every replica (healthy pods taken
    out of service) and holds a web thread ~76 s per probe.
    Expected: each check answers (up or down) within its documented 2 s."""
    settings.FOUNDRY_READY_REQUIRES_WORKER = False
    body = Client().get("/readyz").json()
    slow = {name: check["latency_ms"] for name, check in body["checks"].items() if check["latency_ms"] > 2500}
    assert not slow, f"checks over the documented 2 s (ms): {slow}; {body}"
