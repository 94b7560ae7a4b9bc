"""Rate limits and concurrency leases on Redis, atomic across processes (issue 8, the core).

`Limiter.check(key, rate)` runs GCRA (the generic cell rate algorithm) in one Lua script: one
round trip (EVALSHA), time from Redis (`TIME`), so skewed client clocks cannot widen a window.
`Limiter.check_many([(key, rate), ...])` checks several keys in the same round trip, all or
nothing (an API request spends its credential's and its workspace's rates together).

What a `Rate(limit, period, burst)` admits, exactly: requests are spaced by the interval
`period / limit`; a key with no recent traffic admits `burst` (default: `limit`) requests at once,
then one more each interval. Over any stretch of `d` seconds a key admits at most
`burst + floor(d / interval)` units; in particular a burst of calls within one interval admits
exactly `burst`, and after `burst * interval` seconds of silence the full burst is back.

`Limiter.acquire(key, capacity, ttl)` hands out leases for concurrency limits: a sorted set of
lease ids scored by their expiry (Redis time), expired ones purged inside the same script, so a
crashed holder's slot comes back after `ttl` at the latest. Holders `renew` before `ttl` runs out.

When Redis is unreachable nothing raises and nothing hangs (use `limiter_redis()`: 0.25 s
socket timeouts, no retries; after a failure Redis is left alone for `cooldown` seconds):
- `check(..., on_error="closed")` (the default; run admission): refused, `retry_after` =
  `UNAVAILABLE_RETRY_AFTER`;
- `check(..., on_error="open_local")` (reads): the same GCRA in this process, per key, for at
  most `local_max_keys` keys (least recently used ones dropped). Each process admits the full
  rate on its own, so a deployment of n processes admits up to n times the rate meanwhile;
- `acquire` fails closed (None); `renew` answers False (the holder cannot count on its lease);
  `release` answers False (the lease runs out by itself).
A warning is logged at most once per `WARNING_INTERVAL` seconds, not per call.
"""

import functools
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from foundry.redis_clients import redis_client

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl"
MAX_KEY_LENGTH = 200
MAX_LIMIT = 1_000_000
MAX_PERIOD = 7 * 24 * 3600.0  # a week
MAX_LEASE_TTL = 24 * 3600.0
REDIS_TIMEOUT = 0.25  # seconds, connect and per command: the most a check waits for Redis
_LOCAL_SLACK = 1e-6  # seconds: as the script's 1 µs, so float rounding never loses a unit
UNAVAILABLE_RETRY_AFTER = 1.0  # seconds, told to clients refused because Redis is unreachable
WARNING_INTERVAL = 60.0  # seconds between two warnings that Redis is unreachable
POLICY_NAME = "default"

OnError = Literal["closed", "open_local"]

_SCOPE = re.compile(r"[a-z0-9_-]+")
_RATE_TEXT = re.compile(r"(\d{1,7})/(\d{1,6}(?:\.\d{1,3})?)?([smhd])")
_PERIOD_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SCRIPTS = Path(__file__).with_suffix(".lua")


def limiter_redis(url: str, *, timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """A Redis client for the limiter: short timeouts and no retries, so an unreachable or hung
    Redis costs a request at most `timeout` seconds (then `cooldown` spares the next ones)."""
    return redis_client(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def limit_key(scope: str, identifier: str) -> str:
    """The key of one limited thing, `rl:{scope}:{identifier}`, say `rl:tenant:acme`."""
    if not _SCOPE.fullmatch(scope):
        raise ValueError(f"a rate limit scope is lowercase letters, digits, - and _, not {scope!r}")
    return _key_validated(f"{KEY_PREFIX}:{scope}:{identifier}")


@functools.lru_cache(maxsize=4096)
def _key_validated(key: str) -> str:
    scope, sep, identifier = key.removeprefix(f"{KEY_PREFIX}:").partition(":")
    if not key.startswith(f"{KEY_PREFIX}:") or not sep or not _SCOPE.fullmatch(scope) or not identifier:
        raise ValueError(f"a rate limit key is {KEY_PREFIX}:{{scope}}:{{id}}, not {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"a rate limit key has at most {MAX_KEY_LENGTH} characters, not {len(key)}")
    if not key.isprintable() or any(char.isspace() for char in key):
        raise ValueError(f"a rate limit key has no spaces or control characters: {key!r}")
    return key


@dataclass(frozen=True)
class Rate:
    """`limit` units per `period` seconds, at most `burst` (default `limit`) at once."""

    limit: int
    period: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"a rate's limit is an integer from 1 to {MAX_LIMIT}, not {self.limit!r}")
        if not isinstance(self.period, int | float) or not 0.001 <= self.period <= MAX_PERIOD:
            raise ValueError(f"a rate's period is from 0.001 to {MAX_PERIOD:g} seconds, not {self.period!r}")
        burst = self.burst
        if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_LIMIT):
            raise ValueError(f"a rate's burst is an integer from 1 to {MAX_LIMIT}, not {burst!r}")

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """A rate written as settings write it: `5/m` (5 a minute), `30/10s`, `100/h`, `1000/d`."""
        match = _RATE_TEXT.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"a rate is written <count>/<period>, say 5/m, 30/10s or 100/h, not {text!r}")
        count, number, unit = match.groups()
        return cls(int(count), float(number or 1) * _PERIOD_UNITS[unit])

    @property
    def capacity(self) -> int:
        return self.limit if self.burst is None else self.burst

    @property
    def interval(self) -> float:
        """Seconds between two units once the burst is spent."""
        return self.period / self.limit


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int  # units admissible right now, after this decision
    reset_after: float  # seconds until the key is back to its full burst
    retry_after: float  # seconds until this request would be admitted; 0 when it was
    period: float = 0.0
    unavailable: bool = False  # refused only because Redis could not be asked (on_error="closed")
    refused_by: str = ""  # of several limits checked at once, the one that refused (login_admit names it)

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy and RateLimit as draft-ietf-httpapi-ratelimit-headers (-10, -11) has
        them, and Retry-After (whole seconds, rounded up) when refused."""
        headers = {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w={math.ceil(self.period)}',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={math.ceil(self.reset_after)}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(math.ceil(self.retry_after), 1))
        return headers


def _check_valid(key: str, rate: Rate, cost: int, on_error: str) -> None:
    _key_validated(key)
    if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= rate.capacity:
        raise ValueError(f"a check's cost is an integer from 1 to the rate's burst {rate.capacity}, not {cost!r}")
    if on_error not in ("closed", "open_local"):
        raise ValueError(f'on_error is "closed" or "open_local", not {on_error!r}')


class _LocalLimiter:
    """The same GCRA in this process, for at most `max_keys` keys: the fallback for reads."""

    def __init__(self, max_keys: int):
        self._max_keys = max_keys
        self._tats: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (TAT, its interval)
        self._lock = threading.Lock()

    def check_many(self, checks: Sequence[tuple[str, Rate]], cost: int) -> list[Decision]:
        """As the script does it: every key evaluated, all spent only if every one admits."""
        decisions, spend = [], []
        with self._lock:
            now = time.monotonic() + _LOCAL_SLACK
            for key, rate in checks:
                interval, tolerance = rate.interval, rate.interval * rate.capacity
                tat, at_interval = self._tats.get(key, (now, interval))
                tat = max(tat, now)
                if at_interval != interval:  # the limit changed since: the same debt, in units
                    tat = now + (tat - now) * interval / at_interval
                tat = min(tat, now + tolerance)  # and a lowered burst: never further ahead than it allows
                new_tat = tat + interval * cost
                allow_at = new_tat - tolerance
                if now < allow_at:
                    remaining = max(math.floor((now - (tat - tolerance)) / interval), 0)
                    decisions.append(Decision(False, rate.limit, remaining, tat - now, allow_at - now, rate.period))
                else:
                    remaining = max(math.floor((now - (new_tat - tolerance)) / interval), 0)
                    decisions.append(Decision(True, rate.limit, remaining, new_tat - now, 0.0, rate.period))
                    spend.append((key, new_tat, interval))
            if len(spend) == len(checks):
                for key, new_tat, interval in spend:
                    self._tats[key] = (new_tat, interval)
                    self._tats.move_to_end(key)
                while len(self._tats) > self._max_keys:
                    self._tats.popitem(last=False)
        return decisions

    def __len__(self) -> int:
        return len(self._tats)


class Limiter:
    def __init__(self, redis_client: redis.Redis, *, local_max_keys: int = 10_000, cooldown: float = 1.0):
        self._redis = redis_client
        scripts = _scripts_load()
        self._gcra = redis_client.register_script(scripts["gcra"])
        self._lease_acquire = redis_client.register_script(scripts["lease_acquire"])
        self._lease_renew = redis_client.register_script(scripts["lease_renew"])
        self._local = _LocalLimiter(local_max_keys)
        self._cooldown = cooldown
        self._unavailable_until = 0.0  # monotonic; Redis is not asked before then
        self._warned_at = -math.inf
        self._lock = threading.Lock()

    # --- rates ---------------------------------------------------------------------------------

    def check(self, key: str, rate: Rate, cost: int = 1, *, on_error: OnError = "closed") -> Decision:
        """Spend `cost` units of `rate` on `key` if they are available (all or nothing)."""
        # check_many's one-key case, without its lists: this is every request's hot path.
        _check_valid(key, rate, cost, on_error)
        if self._available():
            try:
                allowed, remaining, reset_us, retry_us = self._gcra_run(
                    (key,), (rate.interval * 1e6, rate.capacity, cost)
                )
            except redis.RedisError as error:
                self._failed(error)
            else:
                return Decision(bool(allowed), rate.limit, remaining, reset_us / 1e6, retry_us / 1e6, rate.period)
        return self._unanswered([(key, rate)], cost, on_error)[0]

    def check_many(
        self, checks: Sequence[tuple[str, Rate]], cost: int = 1, *, on_error: OnError = "closed"
    ) -> list[Decision]:
        """Spend `cost` units on each (key, rate) of `checks` in one round trip, only if every one
        admits them: when one refuses, nothing is spent. A decision per key, in order (a key that
        would have admitted says so, though nothing was spent when another refused)."""
        if not checks or len({key for key, _ in checks}) != len(checks):
            raise ValueError("a check names one key or more, each once")
        args: list[float | int] = []
        for key, rate in checks:
            _check_valid(key, rate, cost, on_error)
            args += (rate.interval * 1e6, rate.capacity, cost)
        if self._available():
            try:
                flat = self._gcra_run([key for key, _ in checks], args)
            except redis.RedisError as error:
                self._failed(error)
            else:
                return [
                    Decision(
                        bool(flat[at]), rate.limit, flat[at + 1], flat[at + 2] / 1e6, flat[at + 3] / 1e6, rate.period
                    )
                    for at, (_, rate) in zip(range(0, len(flat), 4), checks, strict=True)
                ]
        return self._unanswered(checks, cost, on_error)

    def _unanswered(self, checks: Sequence[tuple[str, Rate]], cost: int, on_error: OnError) -> list[Decision]:
        """The decisions when Redis could not be asked: `on_error` says which."""
        if on_error == "open_local":
            return self._local.check_many(checks, cost)
        return [
            Decision(
                False, rate.limit, 0, UNAVAILABLE_RETRY_AFTER, UNAVAILABLE_RETRY_AFTER, rate.period, unavailable=True
            )
            for _, rate in checks
        ]

    def _gcra_run(self, keys: Sequence[str], args: Sequence[float | int]) -> list[int]:
        # EVALSHA straight away: Script.__call__ costs a few µs more per check (see bench/ratelimit.py).
        try:
            return self._redis.evalsha(self._gcra.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # Redis restarted or flushed its scripts
            return self._gcra(keys=list(keys), args=list(args))

    # --- leases --------------------------------------------------------------------------------

    def acquire(self, key: str, capacity: int, ttl: float) -> str | None:
        """A lease id if fewer than `capacity` unexpired leases are held on `key`, else None
        (also None when Redis is unreachable: concurrency limits fail closed)."""
        _key_validated(key)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_LIMIT:
            raise ValueError(f"a lease capacity is an integer from 1 to {MAX_LIMIT}, not {capacity!r}")
        lease_id = uuid.uuid4().hex
        if not self._available():
            return None
        try:
            acquired, _ = self._lease_acquire(keys=[key], args=[capacity, _lease_micros(ttl), lease_id])
        except redis.RedisError as error:
            self._failed(error)
            return None
        return lease_id if acquired else None

    def renew(self, key: str, lease_id: str, ttl: float) -> bool:
        """Extend a lease to `ttl` seconds from now; False if it expired, was released, or Redis
        cannot be asked (the holder should stop what the lease guards)."""
        _key_validated(key)
        if not self._available():
            return False
        try:
            return bool(self._lease_renew(keys=[key], args=[lease_id, _lease_micros(ttl)]))
        except redis.RedisError as error:
            self._failed(error)
            return False

    def release(self, key: str, lease_id: str) -> bool:
        """Give a lease back; False if it was not held (or Redis cannot be asked: it expires)."""
        _key_validated(key)
        if not self._available():
            return False
        try:
            return bool(self._redis.zrem(key, lease_id))
        except redis.RedisError as error:
            self._failed(error)
            return False

    # --- Redis unreachable ---------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False for `cooldown` seconds after Redis failed to answer (it is not asked meanwhile):
        tells a refused `acquire` (None) because no slot is free from one because Redis is away."""
        return self._available()

    def _available(self) -> bool:
        return time.monotonic() >= self._unavailable_until

    def _failed(self, error: redis.RedisError) -> None:
        now = time.monotonic()
        with self._lock:
            self._unavailable_until = now + self._cooldown
            warn = now - self._warned_at >= WARNING_INTERVAL
            if warn:
                self._warned_at = now
        if warn:
            logger.warning("rate limiter: Redis unreachable, falling back for %gs: %s", self._cooldown, error)


def _lease_micros(ttl: float) -> int:
    if not isinstance(ttl, int | float) or not 0.001 <= ttl <= MAX_LEASE_TTL:
        raise ValueError(f"a lease ttl is from 0.001 to {MAX_LEASE_TTL:g} seconds, not {ttl!r}")
    return math.ceil(ttl * 1e6)


@functools.cache
def _scripts_load() -> dict[str, str]:
    """The sections of ratelimit.lua, by name."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _SCRIPTS.read_text().splitlines():
        if line.startswith("--@ "):
            current = sections.setdefault(line.removeprefix("--@ ").strip(), [])
        else:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}
