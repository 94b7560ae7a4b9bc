"""Retention (`usage_detail_days`) deletes the ledger rows of days already rolled up: statements
still count those days (from their roll-ups), and re-rolling a day keeps what it counted.

docs/billing.md, "Statements": a statement "is read from the ledger itself, not the roll-up, so it
is exact"; "Daily roll-ups": `usage_rollup` "recomputes one tenant's day ... so it is idempotent;
the ledger is append-only, so no group ever disappears". docs/retention.md: `usage_detail_days`
deletes "the usage ledger's per-call rows, once their day is rolled up ... Daily roll-ups and
monthly totals stay" — the roll-up is then the only record of those calls.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.billing.models import UsageDay, UsageRecord
from apps.billing.rls import usage_scope
from apps.billing.rollups import usage_rollup
from apps.lifecycle.erasing import erasing
from apps.lifecycle.retention import retention_apply, retention_policy_set
from tests.api.conftest import api, issue


def _ledger_add(tenant, when: datetime, *, tokens=(100, 10, 0), cost="0.25") -> UsageRecord:
    with usage_scope(tenant.pk):
        return UsageRecord.objects.create(
            tenant_id=tenant.pk, project="p", agent="alpha", provider="openai", model="m1",
            input_tokens=tokens[0], output_tokens=tokens[1], cached_tokens=tokens[2], latency_ms=1.0,
            cost_usd=Decimal(cost), created_at=when,
        )  # fmt: skip


def _usage_detail_days(tenant, days: int) -> None:
    with schema_context(tenant.schema_name):
        retention_policy_set(
            actor="test", runs_days=None, checkpoints_days=None, usage_detail_days=days, traces_days=None,
            exports_days=None, audit_days=None, audit_legal_hold=False,
        )  # fmt: skip


def _day_rows(tenant, day: date) -> list[tuple]:
    with usage_scope(tenant.pk):
        return list(
            UsageDay.objects.filter(tenant_id=tenant.pk, day=day).values_list("calls", "input_tokens", "cost_usd")
        )


def test_a_statement_of_days_whose_ledger_detail_retention_removed_still_counts_their_usage(acme):
    """The API's statement, MCP's reader (usage_summary) alike."""
    now = timezone.now()
    day = (now - timedelta(days=40)).astimezone(UTC).date()
    noon = datetime.combine(day, time(12), tzinfo=UTC)
    _ledger_add(acme, noon)
    _ledger_add(acme, noon + timedelta(hours=1), tokens=(50, 5, 0), cost="0.5")
    usage_rollup(tenant_id=acme.pk, day=day)
    assert _day_rows(acme, day) == [(2, 150, Decimal("0.75"))]
    client = api(acme, issue(acme, role="viewer", scopes=["read"]))
    query = {"start": day.isoformat(), "end": day.isoformat()}
    before = client.get("/api/v1/usage/statement", query).json()["totals"]
    assert (before["calls"], before["input_tokens"], before["cost_usd"]) == (2, 150, "0.75000000")

    _usage_detail_days(acme, 30)
    assert retention_apply(tenant=acme, now=now)["usage_detail"] == 2
    assert _day_rows(acme, day) == [(2, 150, Decimal("0.75"))]  # the roll-up stays, as documented

    after = client.get("/api/v1/usage/statement", query).json()["totals"]
    assert (after["calls"], after["input_tokens"], after["cost_usd"]) == (2, 150, "0.75000000"), (
        f"the statement of {day} lost its usage once retention pruned the ledger: {after}"
    )


def test_rolling_up_a_day_again_after_retention_pruned_it_keeps_its_totals(acme):
    """The day the cut-off falls in stays whole, and a roll-up is never replaced by one of fewer calls."""
    day = timezone.now().astimezone(UTC).date() - timedelta(days=40)
    _ledger_add(acme, datetime.combine(day, time(1), tzinfo=UTC))  # before the nightly pass's cut-off
    _ledger_add(acme, datetime.combine(day, time(18), tzinfo=UTC))  # after it
    usage_rollup(tenant_id=acme.pk, day=day)
    assert _day_rows(acme, day) == [(2, 200, Decimal("0.5"))]

    _usage_detail_days(acme, 30)
    nightly = datetime.combine(day + timedelta(days=30), time(3, 15), tzinfo=UTC)  # lifecycle-retention's time
    assert retention_apply(tenant=acme, now=nightly)["usage_detail"] == 0  # its day is not over: whole
    assert retention_apply(tenant=acme, now=nightly + timedelta(days=1))["usage_detail"] == 2

    call_command("usage_rollup", "--day", day.isoformat(), "--tenant", "acme")  # docs/billing.md: "By hand"
    assert _day_rows(acme, day) == [(2, 200, Decimal("0.5"))]


def test_a_day_left_half_pruned_keeps_its_roll_up_and_its_statement(acme):
    """A day whose ledger lost some of its rows (a pass of an older release cut at a moment, not
    a day's start): re-rolling it leaves its roll-up alone, and its statement counts from it."""
    day = timezone.now().astimezone(UTC).date() - timedelta(days=40)
    early = _ledger_add(acme, datetime.combine(day, time(1), tzinfo=UTC))
    _ledger_add(acme, datetime.combine(day, time(18), tzinfo=UTC))
    usage_rollup(tenant_id=acme.pk, day=day)
    with erasing(), usage_scope(acme.pk):
        UsageRecord.objects.filter(pk=early.pk).delete()
    usage_rollup(tenant_id=acme.pk, day=day)
    assert _day_rows(acme, day) == [(2, 200, Decimal("0.5"))]
    client = api(acme, issue(acme, role="viewer", scopes=["read"]))
    totals = client.get("/api/v1/usage/statement", {"start": day.isoformat(), "end": day.isoformat()}).json()["totals"]
    assert (totals["calls"], totals["input_tokens"], totals["cost_usd"]) == (2, 200, "0.50000000")
