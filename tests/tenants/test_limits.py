import pytest
from django.core.management import CommandError, call_command

from apps.tenants.limits import limits_for
from apps.tenants.models import Plan, Tenant
from tests.conftest import audit_events


def test_it_seeds_the_three_plans(db):
    plans = {p.name: (p.requests_per_second, p.burst, p.concurrent_runs, p.monthly_tokens) for p in Plan.objects.all()}
    assert plans == {
        "free": (5, 20, 2, 1_000_000),
        "team": (20, 100, 10, 20_000_000),
        "enterprise": (100, 500, 50, None),
    }


def test_it_applies_the_plan_values(globex, settings):
    settings.FOUNDRY_RATELIMIT_PLAN_SCALE = 1.0
    limits = limits_for(globex)
    assert (limits.plan, limits.requests_per_second, limits.burst, limits.concurrent_runs, limits.monthly_tokens) == (
        "team",
        20,
        100,
        10,
        20_000_000,
    )
    assert limits.overridden == frozenset()
    credential = limits.credential_rate()  # half the rate (20 every 2 s) and the burst
    assert (credential.limit / credential.period, credential.capacity) == (10.0, 50)


def test_it_scales_plans_but_never_overrides(globex, settings):
    settings.FOUNDRY_RATELIMIT_PLAN_SCALE = 10.0
    call_command("tenant_limits", "globex", "--burst", "7")
    limits = limits_for(globex)
    assert (limits.requests_per_second, limits.burst) == (200, 7)


def test_an_override_wins_and_clear_restores_the_plan(globex, settings, capsys):
    settings.FOUNDRY_RATELIMIT_PLAN_SCALE = 1.0
    call_command("tenant_limits", "globex", "--requests-per-second", "3", "--monthly-tokens", "5000")
    limits = limits_for(globex)
    assert (limits.requests_per_second, limits.burst, limits.monthly_tokens) == (3, 100, 5000)
    assert limits.overridden == {"requests_per_second", "monthly_tokens"}
    out = capsys.readouterr().out
    assert "requests_per_second: 3 (override)" in out and "burst: 100 (plan)" in out
    (event,) = audit_events("public", action="tenant.limits.set")
    assert event.actor_id == "service:cli:tenant_limits"
    assert event.data["after"]["requests_per_second"] == 3 and event.data["before"]["requests_per_second"] is None
    call_command("tenant_limits", "globex", "--requests-per-second", "3")  # as it is: nothing to record
    assert len(audit_events("public", action="tenant.limits.set")) == 1

    call_command("tenant_limits", "globex", "--clear")
    limits = limits_for(globex)
    assert (limits.requests_per_second, limits.monthly_tokens, limits.overridden) == (20, 20_000_000, frozenset())


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--burst", "-5", "burst must be a whole number from 1 to 1,000,000, not -5"),
        ("--requests-per-second", "0", "requests_per_second must be a whole number from 1 to 100,000, not 0"),
        ("--concurrent-runs", "999999999", "concurrent_runs must be a whole number from 1 to 10,000"),
    ],
)
def test_it_refuses_negative_or_absurd_values(globex, option, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("tenant_limits", "globex", option, value)
    tenant = Tenant.objects.get(slug="globex")
    assert (tenant.burst_override, tenant.requests_per_second_override, tenant.concurrent_runs_override) == (
        None,
        None,
        None,
    )
    assert audit_events("public", action="tenant.limits.set") == []


def test_it_refuses_an_unknown_tenant(db):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("tenant_limits", "nope", "--burst", "3")
