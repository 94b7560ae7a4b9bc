"""The rate limiter and concurrency leases (foundry/ratelimit.py) on a real Redis: this worker's
cache database, each test on keys of its own."""

import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

from foundry.ratelimit import (
    MAX_KEY_LENGTH,
    UNAVAILABLE_RETRY_AFTER,
    Limiter,
    Rate,
    limit_key,
    limiter_redis,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url() -> str:
    return settings.CACHES["default"]["LOCATION"]


@pytest.fixture
def limiter(redis_url) -> Limiter:
    return Limiter(limiter_redis(redis_url))


@pytest.fixture
def key() -> str:
    return limit_key("test", uuid.uuid4().hex)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hammer(calls: int, threads: int, call) -> list:
    barrier = threading.Barrier(threads)

    def worker(_):
        barrier.wait()
        return [call() for _ in range(calls)]

    with ThreadPoolExecutor(threads) as pool:
        return [result for results in pool.map(worker, range(threads)) for result in results]


# --- rates -------------------------------------------------------------------------------------


def test_it_admits_exactly_the_burst_to_concurrent_threads(limiter, key):
    decisions = hammer(25, 8, lambda: limiter.check(key, Rate(40, 3600)))
    assert sum(d.allowed for d in decisions) == 40
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(40))


PROCESS_SCRIPT = """
import sys
from foundry.ratelimit import Limiter, Rate, limiter_redis
limiter = Limiter(limiter_redis(sys.argv[1]))
print(sum(limiter.check(sys.argv[2], Rate(50, 3600)).allowed for _ in range(40)))
"""


def test_it_admits_exactly_the_burst_to_concurrent_processes(redis_url, key):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, redis_url, key],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    admitted = [int(p.communicate(timeout=30)[0]) for p in processes]
    assert sum(admitted) == 50  # of 160 calls from 4 processes


def test_it_refills_one_unit_per_interval(limiter, key):
    rate = Rate(5, 1.0)  # one every 0.2 s, 5 at once
    decisions = [limiter.check(key, rate) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    refused = decisions[-1]
    assert 0.1 < refused.retry_after <= 0.2
    time.sleep(refused.retry_after + 0.02)  # retry_after is measured in Redis time
    assert limiter.check(key, rate).allowed
    assert not limiter.check(key, rate).allowed


def test_it_admits_the_burst_then_spaces_the_rest(limiter, key):
    rate = Rate(10, 1.0, burst=3)
    decisions = [limiter.check(key, rate) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert 0.05 < decisions[-1].retry_after <= 0.1


def test_it_spends_the_cost_all_or_nothing(limiter, key):
    rate = Rate(10, 60)
    assert [limiter.check(key, rate, cost=4).remaining for _ in range(2)] == [6, 2]
    refused = limiter.check(key, rate, cost=4)
    assert (refused.allowed, refused.remaining) == (False, 2)
    assert 11.5 < refused.retry_after <= 12  # two more units, 6 s each
    last = limiter.check(key, rate, cost=2)  # the refusal spent nothing
    assert (last.allowed, last.remaining) == (True, 0)


@pytest.fixture
def other() -> str:
    return limit_key("test", uuid.uuid4().hex)


@pytest.mark.parametrize("local", [False, True], ids=["redis", "local-fallback"])
def test_several_keys_are_spent_together_or_not_at_all(limiter, unreachable, key, other, local):
    checking = unreachable if local else limiter
    options = {"on_error": "open_local"} if local else {}
    tight, loose = Rate(2, 60), Rate(10, 60)
    for left in (1, 0):  # both admit: both spent
        decisions = checking.check_many([(key, tight), (other, loose)], **options)
        assert [(d.allowed, d.remaining) for d in decisions] == [(True, left), (True, 9 - (1 - left))]
    refused, would = checking.check_many([(key, tight), (other, loose)], **options)
    assert (refused.allowed, refused.remaining, would.allowed) == (False, 0, True)
    assert 29 < refused.retry_after <= 30
    # The refusal spent nothing on the key that would have admitted: 8 left there, as before it.
    assert checking.check(other, loose, **options).remaining == 7


def test_several_keys_admit_exactly_the_tightest_rate_to_concurrent_threads(limiter, key, other):
    decisions = hammer(10, 8, lambda: limiter.check_many([(key, Rate(25, 3600)), (other, Rate(1000, 86400))]))
    assert sum(first.allowed for first, _ in decisions) == 25
    assert all(second.allowed for _, second in decisions)  # it would admit each: the first decides
    assert limiter.check(other, Rate(1000, 86400)).remaining == 1000 - 25 - 1  # spent only with the first


@pytest.mark.parametrize("checks", [[], "twice"], ids=["none", "a-key-twice"])
def test_several_keys_are_named_once_each(limiter, key, checks):
    with pytest.raises(ValueError, match="each once"):
        limiter.check_many([(key, Rate(5, 60)), (key, Rate(5, 60))] if checks == "twice" else checks)


def test_it_loads_the_script_again_after_redis_forgot_it(limiter, key):
    assert limiter.check(key, Rate(2, 60)).allowed
    limiter._redis.script_flush()
    assert [limiter.check(key, Rate(2, 60)).allowed for _ in range(2)] == [True, False]


@pytest.mark.parametrize("cost", [0, -1, 11, 1.5, True])
def test_it_refuses_a_cost_outside_the_burst(limiter, key, cost):
    with pytest.raises(ValueError, match="cost"):
        limiter.check(key, Rate(10, 60), cost=cost)


def test_it_answers_the_ietf_headers(limiter, key):
    rate = Rate(100, 60)
    first = limiter.check(key, rate)
    assert first.headers() == {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=99;t=1'}
    for _ in range(99):
        limiter.check(key, rate)
    refused = limiter.check(key, rate)
    assert not refused.allowed
    assert refused.headers() == {
        "RateLimit-Policy": '"default";q=100;w=60',
        "RateLimit": '"default";r=0;t=60',
        "Retry-After": "1",  # 0.6 s, rounded up
    }


@pytest.mark.parametrize(
    "limit, period, burst",
    [(0, 1, None), (-1, 1, None), (1.5, 1, None), (10**7, 1, None), (1, 0, None), (1, 10**7, None), (1, 1, 0)],
)
def test_it_refuses_an_invalid_rate(limit, period, burst):
    with pytest.raises(ValueError, match="rate's"):
        Rate(limit, period, burst)


# --- keys --------------------------------------------------------------------------------------


def test_it_namespaces_keys():
    assert limit_key("tenant", "acme") == "rl:tenant:acme"
    assert limit_key("token", "af_1:x") == "rl:token:af_1:x"


@pytest.mark.parametrize(
    "scope, identifier",
    [("tenant", "a b"), ("tenant", "a\x00b"), ("tenant", "a\nb"), ("tenant", ""), ("Tenant", "a"), ("a:b", "c")],
)
def test_it_refuses_a_malformed_key(scope, identifier):
    with pytest.raises(ValueError, match="rate limit"):
        limit_key(scope, identifier)


@pytest.mark.parametrize("key", ["tenant:acme", "rl:tenant", "rl:tenant:" + "x" * MAX_KEY_LENGTH, "rl:t:a\tb"])
def test_it_refuses_a_malformed_key_at_check(limiter, key):
    with pytest.raises(ValueError, match="rate limit key"):
        limiter.check(key, Rate(1, 1))
    with pytest.raises(ValueError, match="rate limit key"):
        limiter.acquire(key, 1, 1)


# --- leases ------------------------------------------------------------------------------------


def test_it_grants_at_most_capacity_leases_to_concurrent_holders(limiter, key):
    leases = hammer(5, 8, lambda: limiter.acquire(key, 3, 60))
    granted = [lease for lease in leases if lease]
    assert len(granted) == 3
    assert limiter._redis.zcard(key) == 3


def test_it_grants_a_released_slot_again(limiter, key):
    first, second = limiter.acquire(key, 2, 60), limiter.acquire(key, 2, 60)
    assert limiter.acquire(key, 2, 60) is None
    assert limiter.release(key, first) is True
    assert limiter.release(key, first) is False  # already given back
    assert limiter.acquire(key, 2, 60) is not None
    assert limiter.acquire(key, 2, 60) is None
    assert second is not None


def test_it_frees_the_slot_of_a_crashed_holder_after_the_ttl(limiter, key):
    crashed = limiter.acquire(key, 1, 0.2)  # never released nor renewed
    assert crashed is not None
    assert limiter.acquire(key, 1, 0.2) is None
    time.sleep(0.25)
    assert limiter.acquire(key, 1, 60) is not None
    assert limiter.renew(key, crashed, 60) is False  # too late: its slot was purged and is taken
    assert limiter._redis.pttl(key) > 59_000  # the set expires with its last lease


def test_it_keeps_a_renewed_lease(limiter, key):
    lease = limiter.acquire(key, 1, 1.0)  # long enough that a stalled machine still renews in time
    assert limiter.renew(key, lease, 5.0) is True
    time.sleep(1.1)
    assert limiter.acquire(key, 1, 1.0) is None
    assert limiter.release(key, lease) is True
    assert limiter.renew(key, lease, 1.0) is False


# --- Redis unreachable -------------------------------------------------------------------------


@pytest.fixture
def unreachable() -> Limiter:
    return Limiter(limiter_redis(f"redis://127.0.0.1:{closed_port()}/0"), local_max_keys=5, cooldown=0.1)


def test_it_fails_closed_at_once_when_redis_is_unreachable(unreachable, key, caplog):
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="foundry.ratelimit"):
        decisions = [unreachable.check(key, Rate(100, 60)) for _ in range(20)]
        for _ in range(3):
            time.sleep(0.11)  # past the cooldown: Redis is asked (and fails) again
            decisions.append(unreachable.check(key, Rate(100, 60)))
    assert time.monotonic() - started < 1.0
    assert not any(d.allowed for d in decisions)
    assert decisions[0].retry_after == UNAVAILABLE_RETRY_AFTER
    assert decisions[0].headers()["Retry-After"] == "1"
    assert len([r for r in caplog.records if "Redis unreachable" in r.message]) == 1


def test_it_fails_closed_within_the_timeout_when_redis_hangs(key):
    with socket.socket() as silent:  # accepts connections (in its backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        limiter = Limiter(limiter_redis(f"redis://127.0.0.1:{silent.getsockname()[1]}/0"))
        started = time.monotonic()
        decisions = [limiter.check(key, Rate(100, 60)) for _ in range(10)]
        elapsed = time.monotonic() - started
    assert not any(d.allowed for d in decisions)
    assert elapsed < 0.6  # one 0.25 s timeout, then the cooldown spares the others


def test_it_admits_a_bounded_rate_locally_when_asked_to(unreachable, key):
    decisions = [unreachable.check(key, Rate(3, 60), on_error="open_local") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    for index in range(20):
        unreachable.check(limit_key("test", f"other-{index}"), Rate(3, 60), on_error="open_local")
    assert len(unreachable._local) == 5


def test_it_refuses_leases_when_redis_is_unreachable(unreachable, key):
    assert unreachable.acquire(key, 10, 60) is None
    assert unreachable.renew(key, "lease", 60) is False
    assert unreachable.release(key, "lease") is False


def test_it_recovers_when_redis_comes_back(key):
    import redis

    port = closed_port()
    limiter = Limiter(limiter_redis(f"redis://127.0.0.1:{port}/0"), cooldown=0.1)
    assert not limiter.check(key, Rate(5, 60)).allowed
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port)
        for _ in range(100):
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        time.sleep(0.1)  # the cooldown
        assert [limiter.check(key, Rate(2, 60)).allowed for _ in range(3)] == [True, True, False]
        assert probe.exists(key) == 1
    finally:
        server.terminate()
        server.wait(5)
