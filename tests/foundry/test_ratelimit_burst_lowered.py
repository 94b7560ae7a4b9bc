"""A lowered burst at the same rate keeps a bucket's debt within the new burst, in Redis and in the
process's fallback (docs/limits.md: what was spent is counted at the new rate, within the new burst)."""

import uuid

import pytest
from django.conf import settings

from foundry.ratelimit import Limiter, Rate, _LocalLimiter, limit_key, limiter_redis


@pytest.fixture
def limiter() -> Limiter:
    return Limiter(limiter_redis(settings.CACHES["default"]["LOCATION"]))


def test_a_lowered_burst_at_the_same_rate_keeps_the_debt_within_the_new_burst(limiter):
    """docs/limits.md ("Noisy neighbours"): "when a limit changes, what was spent is counted at the
    new rate (within the new burst)". A workspace at 100/s burst 1,000 that spent its burst, then
    has its burst lowered to 10 (`tenant_limits`, requests_per_second unchanged), should wait at
    most the new burst (10 requests at 100/s: 0.1 s). The script rescales and caps the TAT only
    when the interval changed, so here the old 10 s of debt stands: Retry-After ~9.9 s, while
    lowering the rate as well (99/s burst 10) gives ~0.01 s: a smaller cut waits 1,000x longer."""
    key = limit_key("test", uuid.uuid4().hex)
    assert limiter.check(key, Rate(100, 1, burst=1000), cost=1000).allowed
    decision = limiter.check(key, Rate(100, 1, burst=10))
    assert decision.retry_after <= 0.1 and decision.reset_after <= 0.1 + 0.01, decision


def test_the_local_fallback_keeps_the_debt_within_a_lowered_burst_too():
    """The same as the script, in the in-process fallback (`_LocalLimiter`, on_error="open_local"):
    with the burst lowered from 1,000 to 10 at 100/s the wait should be within the new burst
    (0.1 s), not the 9.9 s of the old one."""
    local, key = _LocalLimiter(10), limit_key("test", uuid.uuid4().hex)
    assert local.check_many([(key, Rate(100, 1, burst=1000))], 1000)[0].allowed
    (decision,) = local.check_many([(key, Rate(100, 1, burst=10))], 1)
    assert decision.retry_after <= 0.1 and decision.reset_after <= 0.1 + 0.01, decision
