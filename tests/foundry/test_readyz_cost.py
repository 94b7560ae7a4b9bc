"""/readyz costs a bounded number of Redis round trips whatever the broker's database holds
(heartbeats in one sorted set, foundry/heartbeat.py), not a SCAN of its keyspace."""

import redis

from foundry.health import readiness
from tests.conftest import redis_server


def _scan_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_a_readiness_probe_costs_a_bounded_number_of_redis_round_trips(db, settings):
    with redis_server() as (_proc, port):
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(host="127.0.0.1", port=port, db=0)
        pipe = client.pipeline(transaction=False)
        for i in range(20_000):
            pipe.set(f"celery-task-meta-{i:08d}", "{}", ex=86400)
        pipe.execute()
        client.zadd("foundry:worker-heartbeats", {"w1@host": float(client.time()[0]) + 30})

        before = _scan_calls(client)
        _ready, checks = readiness()
        scans = _scan_calls(client) - before
        client.close()

    assert checks["workers"]["status"] == "up" and checks["workers"]["count"] == 1
    assert scans <= 5, (
        f"one /readyz made {scans} SCAN round trips over 20,000 unrelated keys of the broker's "
        "database: the probe's cost grows with the result backend's keys"
    )
