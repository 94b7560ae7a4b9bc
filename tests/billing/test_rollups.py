"""The daily roll-up: UsageDay equals the ledger summed per day and group, rolling again changes
nothing, one tenant's roll-up never reads or writes another's rows; the hourly beat job and the
command."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.billing import tasks
from apps.billing.models import UsageDay, UsageRecord
from apps.billing.rls import usage_scope
from apps.billing.rollups import rollup_days, usage_daily, usage_rollup
from apps.billing.selectors import usage_summary
from apps.lifecycle.erasing import erasing
from foundry.celery import app

DAY = date(2026, 1, 5)


def ledger_add(tenant, *, agent="alpha", model="m1", project="p", tokens=(100, 10, 5), cost="0.25", when=None):
    with usage_scope(tenant.pk):
        return UsageRecord.objects.create(
            tenant_id=tenant.pk, project=project, agent=agent, provider="openai", model=model,
            input_tokens=tokens[0], output_tokens=tokens[1], cached_tokens=tokens[2], latency_ms=1.0,
            cost_usd=None if cost is None else Decimal(cost),
            created_at=when or datetime(2026, 1, 5, 12, tzinfo=UTC),
        )  # fmt: skip


def day_rows(tenant, day=DAY) -> list[tuple]:
    with usage_scope(tenant.pk):
        return list(
            UsageDay.objects.filter(tenant_id=tenant.pk, day=day).values_list(
                "project", "agent", "provider", "model", "calls", "input_tokens", "output_tokens",
                "cached_tokens", "cost_usd", "unpriced_calls",
            )
        )  # fmt: skip


@pytest.fixture
def ledger(acme, globex):
    ledger_add(acme, when=datetime(2026, 1, 5, 0, 0, tzinfo=UTC))  # the first moment of the day
    ledger_add(acme, tokens=(20, 2, 0), cost="0.5", when=datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC))
    ledger_add(acme, model="m2", cost=None)
    ledger_add(acme, model="m2", tokens=(1, 1, 0), cost="0.125")
    ledger_add(acme, agent="beta", project="q", tokens=(7, 3, 1))
    ledger_add(acme, when=datetime(2026, 1, 4, 23, 59, 59, tzinfo=UTC))  # the day before
    ledger_add(acme, when=datetime(2026, 1, 6, tzinfo=UTC))  # the day after
    ledger_add(globex, tokens=(10**6, 10**6, 0), cost="99")  # same day and group, another tenant


def test_it_rolls_a_day_up_exactly_as_the_ledger(acme, ledger):
    assert usage_rollup(tenant_id=acme.pk, day=DAY) == 3
    assert day_rows(acme) == [
        ("p", "alpha", "openai", "m1", 2, 120, 12, 5, Decimal("0.75"), 0),
        ("p", "alpha", "openai", "m2", 2, 101, 11, 5, Decimal("0.125"), 1),
        ("q", "beta", "openai", "m1", 1, 7, 3, 1, Decimal("0.25"), 0),
    ]
    summary = usage_summary(
        tenant_id=acme.pk, start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 1, 6, tzinfo=UTC),
        by=("project", "agent", "model"),
    )  # fmt: skip
    assert [(r["calls"], r["input_total"], r["output_total"], r["cached_total"]) for r in summary] == [
        (row[4], row[5], row[6], row[7]) for row in day_rows(acme)
    ]


def test_rolling_again_is_idempotent_and_catches_up_with_new_calls(acme, ledger):
    usage_rollup(tenant_id=acme.pk, day=DAY)
    first = day_rows(acme)
    assert usage_rollup(tenant_id=acme.pk, day=DAY) == 0  # nothing changed, nothing rewritten
    assert day_rows(acme) == first
    ledger_add(acme, agent="beta", project="q", tokens=(1, 1, 1), cost=None)
    assert usage_rollup(tenant_id=acme.pk, day=DAY) == 1
    assert day_rows(acme)[2] == ("q", "beta", "openai", "m1", 2, 8, 4, 2, Decimal("0.25"), 1)


def test_a_tenants_roll_up_never_touches_another_tenant(acme, globex, ledger):
    usage_rollup(tenant_id=acme.pk, day=DAY)
    assert day_rows(globex) == []
    assert sum(row[5] for row in day_rows(acme)) == 228  # globex's million tokens are not in it
    usage_rollup(tenant_id=globex.pk, day=DAY)
    assert day_rows(globex) == [("p", "alpha", "openai", "m1", 1, 10**6, 10**6, 0, Decimal("99"), 0)]
    with usage_scope(acme.pk):  # outside its scope a tenant sees none of the other's rows
        assert UsageDay.objects.filter(tenant_id=globex.pk).count() == 0


def test_an_empty_day_writes_nothing(acme):
    assert usage_rollup(tenant_id=acme.pk, day=DAY) == 0
    assert day_rows(acme) == []


def test_usage_daily_counts_a_closed_day_from_the_larger_of_its_roll_up_and_its_ledger(acme, globex):
    """A closed day counts from its ledger until the roll-up has it (the page's month total and the
    statement count it at once), and from its roll-up once retention has deleted its ledger rows."""
    now = timezone.now()
    yesterday = (now - timedelta(days=1)).astimezone(UTC).date()
    ledger_add(acme, when=now - timedelta(days=1))
    ledger_add(acme, agent="beta", tokens=(5, 5, 0), when=now)
    ledger_add(globex, agent="gamma", when=now)

    def rows(by: str) -> list[tuple]:
        found = usage_daily(tenant_ids=[acme.pk], start=yesterday, end=yesterday + timedelta(days=2), by=by)
        return [(r["day"], r["key"], r["calls"], r["tokens"]) for r in found]

    expected = [(yesterday, "alpha", 1, 110), (yesterday + timedelta(days=1), "beta", 1, 10)]
    assert rows("agent") == expected  # not rolled up yet: from the ledger
    usage_rollup(tenant_id=acme.pk, day=yesterday)
    assert rows("agent") == expected  # rolled up: counted once
    with erasing(), usage_scope(acme.pk):
        UsageRecord.objects.filter(tenant_id=acme.pk, agent="alpha").delete()  # retention's usage_detail_days
    assert rows("model") == [(yesterday, "openai/m1", 1, 110), (yesterday + timedelta(days=1), "openai/m1", 1, 10)]


def test_the_beat_schedule_rolls_up_every_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["billing-rollup"]
    assert (entry["task"], entry["schedule"]) == ("billing.rollup", 3600.0)
    assert {"billing.rollup", "billing.rollup_tenant"} <= set(app.tasks)


def test_the_beat_task_rolls_yesterday_and_today_of_every_tenant(acme, globex, monkeypatch):
    now = timezone.now()
    ledger_add(acme, when=now)
    ledger_add(globex, agent="gamma", when=now - timedelta(days=1))
    queued = []
    monkeypatch.setattr(tasks.usage_rollup_tenant, "delay", lambda *args: queued.append(args))
    # "Today" as of `now`, should the test run across midnight.
    monkeypatch.setattr(tasks, "rollup_days", lambda: rollup_days(now))
    assert tasks.usage_rollup_recent() == len(queued)
    days = [day.isoformat() for day in rollup_days(now)]
    # Every tenant's yesterday and today (committed workspaces of other tests may be there too).
    assert {(tenant.pk, day) for tenant in (acme, globex) for day in days} <= set(queued)
    queued = [args for args in queued if args[0] in (acme.pk, globex.pk)]
    for args in queued:  # as a worker would run them
        tasks.usage_rollup_tenant.apply(args=args).get()
    assert day_rows(acme, now.astimezone(UTC).date())[0][:5] == ("p", "alpha", "openai", "m1", 1)
    assert day_rows(globex, (now - timedelta(days=1)).astimezone(UTC).date())[0][1] == "gamma"


def test_the_command_rolls_one_tenants_day(acme, globex, ledger, capsys):
    call_command("usage_rollup", "--day", "2026-01-05", "--tenant", "acme")
    assert "3 row(s) written" in capsys.readouterr().out
    assert len(day_rows(acme)) == 3
    assert day_rows(globex) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "2026-02-30"], "not a day"),
        (["--day", "5 Jan"], "not a day"),
        (["--day", "9999-12-31"], "in the future"),
        (["--tenant", "nobody"], "no tenant"),
    ],
)
def test_the_command_refuses_bad_input_and_writes_nothing(acme, ledger, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("usage_rollup", *args)
    assert day_rows(acme) == []


def _call(tenant, when):
    with usage_scope(tenant.pk):
        UsageRecord.objects.create(
            tenant_id=tenant.pk, project="p", agent="alpha", provider="openai", model="m1",
            input_tokens=100, output_tokens=10, cached_tokens=0, latency_ms=1.0, cost_usd=Decimal("0.25"),
            created_at=when,
        )  # fmt: skip


def test_a_day_whose_roll_ups_all_failed_is_rolled_up_by_the_next_run(acme, monkeypatch):
    """docs/billing.md: charts read `usage_daily`, "UsageDay for the days before yesterday", and
    the hourly job "re-rolls yesterday and today" so that "yesterday's last calls are counted".
    When every hourly run of the day after D failed (beat or the workers down for a day, the
    broker's queue lost, PostgreSQL away), D's last roll-up was taken before its afternoon's calls:
    the next run catches up on it (it re-rolled only the two newest days, and D's chart undercounted
    for good though the ledger held every call)."""
    today = timezone.now().astimezone(UTC).date()
    day = today - timedelta(days=3)
    morning = datetime.combine(day, time(9), tzinfo=UTC)
    _call(acme, morning)
    usage_rollup(tenant_id=acme.pk, day=day)  # D's 10:00 run, the last one that got through
    _call(acme, morning + timedelta(hours=6))  # a call that afternoon; then no run until today

    monkeypatch.setattr(tasks.usage_rollup_tenant, "delay", lambda *args: tasks.usage_rollup_tenant(*args))
    tasks.usage_rollup_recent()  # beat is back

    rows = usage_daily(tenant_ids=[acme.pk], start=day, end=day + timedelta(days=1), by="agent")
    assert [(r["day"], r["calls"]) for r in rows] == [(day, 2)], rows


def test_a_day_seen_to_its_end_is_not_rolled_up_again(acme, monkeypatch):
    """A day caught up on, or found without calls, is marked: the next hourly run queues only
    yesterday and today for it, not the days before (each would cost a scan of its ledger)."""
    today = timezone.now().astimezone(UTC).date()
    _call(acme, datetime.combine(today - timedelta(days=4), time(9), tzinfo=UTC))
    queued = []
    monkeypatch.setattr(
        tasks.usage_rollup_tenant, "delay", lambda *args: queued.append(args) or tasks.usage_rollup_tenant(*args)
    )
    tasks.usage_rollup_recent()
    assert (acme.pk, (today - timedelta(days=4)).isoformat()) in queued
    queued.clear()
    tasks.usage_rollup_recent()
    assert sorted(day for tenant, day in queued if tenant == acme.pk) == [
        (today - timedelta(days=1)).isoformat(),
        today.isoformat(),
    ]
