"""What one rate limit check costs on loopback Redis, beside the `limits` library and a bare PING.

Needs only the Redis that REDIS_URL names (no database, no Django). Measures in one run, in
interleaved rounds whose order rotates (so the machine's noise falls on all lines alike), each
call timed on its own:
- a bare Redis PING through redis-py: one round trip, the physical floor;
- `Limiter.check` (foundry/ratelimit.py): GCRA in one Lua script (EVALSHA), Redis time;
- the same script through a bare `client.evalsha` (no key check, no Decision): what the Lua
  script itself costs over PING, server and wire, apart from the Python around it;
- the `limits` library's moving-window strategy (`MovingWindowRateLimiter.hit`) on the same Redis.
Checks per second (median of the rounds), p50 and p99 latency over every call, and the ratios to
PING. Each check line uses a rate far above what it is asked for, so every call is admitted and
does the same work. The targets compare each round's p50 and p99 with PING's in the same round
and take the median of the rounds' ratios (as bench/telemetry.py does): a burst of the machine's
noise in one round moves the pooled p99 of whichever line it fell on, not the median. The
garbage collector is off while calls are timed (as `timeit` does), for every line alike.

Then exact admission: 8 threads hammer one fresh key with a limit of --limit per hour; exactly
--limit must be admitted (and, for comparison, what `limits` admits on the same terms).

    bin/dev bench bench/ratelimit.py [--rounds 15] [--calls 2000] [--limit 500]

Target: p50 ≤ 1.2x PING and p99 ≤ 1.5x PING, and exact admission. Exits 1 if one is missed.
Uses keys of its own (rl:bench:…, LIMITS:…bench-…), deleted at the end. Takes ~15 s.
"""

import argparse
import gc
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import verdict

MAX_P50_RATIO = 1.2
MAX_P99_RATIO = 1.5
THREADS = 8


@dataclass
class Line:
    name: str
    label: str
    call: Callable[[], object]
    rates: list[float] = field(default_factory=list)  # calls/s of each round
    latencies: list[float] = field(default_factory=list)  # seconds, every call
    rounds: list[list[float]] = field(default_factory=list)  # seconds, every call, per round

    def quantile(self, q: float) -> float:
        return _quantile(self.latencies, q)

    def ratio(self, floor: "Line", q: float) -> float:
        """The median over the rounds of this line's quantile `q` over the floor's, round by round."""
        pairs = zip(self.rounds, floor.rounds, strict=True)
        return statistics.median(_quantile(ours, q) / _quantile(base, q) for ours, base in pairs)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    return f"redis://127.0.0.1:{os.environ.get('FOUNDRY_REDIS_PORT', '6379')}/0"


def measure(lines: list[Line], rounds: int, calls: int) -> None:
    for line in lines:  # warm-up: connections made, scripts loaded
        for _ in range(200):
            line.call()
    for index in range(rounds):
        shift = index % len(lines)
        for line in lines[shift:] + lines[:shift]:
            timings = []
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                for _ in range(calls):
                    before = time.perf_counter()
                    line.call()
                    timings.append(time.perf_counter() - before)
                line.rates.append(calls / (time.perf_counter() - started))
            finally:
                gc.enable()
            line.latencies.extend(timings)
            line.rounds.append(timings)


def admitted(check: Callable[[], bool], calls: int) -> int:
    barrier = threading.Barrier(THREADS)

    def worker(_) -> int:
        barrier.wait()
        return sum(check() for _ in range(calls))

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(worker, range(THREADS)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000, help="calls per line per round")
    parser.add_argument("--limit", type=int, default=500, help="the limit whose exact admission is checked")
    args = parser.parse_args()

    from limits import RateLimitItemPerHour, RateLimitItemPerSecond
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    from foundry.ratelimit import Limiter, Rate, limit_key, limiter_redis

    url = redis_url()
    run = uuid.uuid4().hex[:8]
    client = limiter_redis(url)
    limiter = Limiter(client)
    storage = RedisStorage(url, key_prefix=f"LIMITS-bench-{run}")
    moving = MovingWindowRateLimiter(storage)

    ours_key, ours_rate = limit_key("bench", f"{run}-latency"), Rate(1_000_000, 1.0)
    theirs_rate = RateLimitItemPerSecond(1_000_000)
    lines = [
        Line("ping", "Redis PING (floor)", client.ping),
        Line("ours", "Limiter.check (GCRA, 1 EVALSHA)", lambda: limiter.check(ours_key, ours_rate)),
        Line(
            "evalsha",
            "bare EVALSHA of the same script",
            lambda: client.evalsha(limiter._gcra.sha, 1, ours_key, 1.0, 1_000_000, 1),
        ),
        Line("limits", "limits moving window (hit)", lambda: moving.hit(theirs_rate, f"{run}-latency")),
    ]
    try:
        measure(lines, args.rounds, args.calls)
        per_thread = 2 * args.limit // THREADS + 1
        exact_key, exact_rate = limit_key("bench", f"{run}-exact"), Rate(args.limit, 3600)
        ours_admitted = admitted(lambda: limiter.check(exact_key, exact_rate).allowed, per_thread)
        theirs_admitted = admitted(lambda: moving.hit(RateLimitItemPerHour(args.limit), f"{run}-exact"), per_thread)
    finally:
        client.delete(*[key for key in client.scan_iter(f"rl:bench:{run}-*")])
        for key in client.scan_iter(f"LIMITS-bench-{run}*"):
            client.delete(key)

    ping = lines[0]
    print(f"Redis {url}, {args.rounds} interleaved rounds of {args.calls} calls per line\n")
    heads = f"{'checks/s':>10} {'p50 µs':>8} {'p99 µs':>8} {'p50/PING':>9} {'p99/PING':>9}"
    print(f"  {'line':<34} {heads}  (pooled p99/PING)")
    for line in lines:
        pooled = line.quantile(0.99) / ping.quantile(0.99)
        print(
            f"  {line.label:<34} {statistics.median(line.rates):>10,.0f} {line.quantile(0.5) * 1e6:>8.1f}"
            f" {line.quantile(0.99) * 1e6:>8.1f} {line.ratio(ping, 0.5):>8.2f}x {line.ratio(ping, 0.99):>8.2f}x"
            f"  ({pooled:.2f}x)"
        )
    print("  (ratios: the median of the rounds' ratios; latencies over every call)")
    calls = per_thread * THREADS
    print(f"\nExact admission: {THREADS} threads, {calls} calls on one fresh key, limit {args.limit} per hour")
    print(f"  Limiter.check      admitted {ours_admitted}")
    print(f"  limits moving win. admitted {theirs_admitted}")

    ours = lines[1]
    p50_ratio, p99_ratio = ours.ratio(ping, 0.5), ours.ratio(ping, 0.99)
    print("\nTargets")
    ok = verdict(f"p50 ≤ {MAX_P50_RATIO:g}x PING ({p50_ratio:.2f}x)", p50_ratio <= MAX_P50_RATIO)
    ok &= verdict(f"p99 ≤ {MAX_P99_RATIO:g}x PING ({p99_ratio:.2f}x)", p99_ratio <= MAX_P99_RATIO)
    ok &= verdict(f"a limit of {args.limit} admits {args.limit} ({ours_admitted})", ours_admitted == args.limit)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
