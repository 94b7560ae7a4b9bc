"""usage_summary: the usage ledger of a period, summed per group."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.billing.models import UsageRecord
from apps.billing.rls import usage_scope
from apps.billing.selectors import usage_summary
from apps.tenants.models import Tenant

JAN, FEB = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def ledger(acme, globex):
    rows = [  # agent, provider, model, input, output, cached, when
        ("alpha", "openai", "m1", 100, 10, 5, datetime(2026, 1, 5, tzinfo=UTC)),
        ("alpha", "openai", "m1", 20, 2, 0, datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ("alpha", "anthropic", "m1", 7, 1, 0, datetime(2026, 1, 6, tzinfo=UTC)),
        ("beta", "openai", "m2", 30, 3, 0, JAN),
        ("beta", "openai", "m2", 999, 99, 0, FEB),  # the end is exclusive
        ("beta", "openai", "m2", 999, 99, 0, datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ]
    with usage_scope(globex.pk):  # another tenant's spending, in the same table, never counted
        UsageRecord.objects.create(
            tenant_id=globex.pk,
            project="p",
            agent="alpha",
            provider="openai",
            model="m1",
            input_tokens=10**6,
            output_tokens=10**6,
            latency_ms=1.0,
            created_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
    with usage_scope(acme.pk):
        for agent, provider, model, input_tokens, output_tokens, cached, when in rows:
            UsageRecord.objects.create(
                tenant_id=acme.pk,
                project="p",
                agent=agent,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_tokens=cached,
                latency_ms=1.0,
                created_at=when,
                cost_usd=Decimal("0.25") if (provider, model) == ("openai", "m1") else None,  # priced then
            )
        yield


def summary(**kwargs) -> list[tuple]:
    rows = usage_summary(tenant_id=Tenant.objects.get(slug="acme").pk, start=JAN, end=FEB, **kwargs)
    return [tuple(v for k, v in row.items() if k not in ("cost_total", "unpriced")) for row in rows]


def test_it_sums_each_agent_and_model_of_the_period(ledger):
    assert summary() == [
        ("alpha", "anthropic", "m1", 1, 7, 1, 0, 0),
        ("alpha", "openai", "m1", 2, 120, 12, 5, 0),
        ("beta", "openai", "m2", 1, 30, 3, 0, 0),
    ]


def test_a_model_is_grouped_with_its_provider(ledger):
    assert summary(by=["model"]) == [
        ("anthropic", "m1", 1, 7, 1, 0, 0),
        ("openai", "m1", 2, 120, 12, 5, 0),
        ("openai", "m2", 1, 30, 3, 0, 0),
    ]
    assert summary(by=["agent"]) == [("alpha", 3, 127, 13, 5, 0), ("beta", 1, 30, 3, 0, 0)]
    assert summary(by=["project"]) == [("p", 4, 157, 16, 5, 0)]


def test_costs_are_summed_and_unpriced_calls_counted(ledger, acme):
    rows = usage_summary(tenant_id=acme.pk, start=JAN, end=FEB, by=["model"])
    costs = [(r["provider"], r["model"], r["cost_total"], r["unpriced"]) for r in rows]
    assert costs == [("anthropic", "m1", None, 1), ("openai", "m1", Decimal("0.5"), 0), ("openai", "m2", None, 1)]


def test_an_empty_period_has_no_rows(ledger, acme):
    assert usage_summary(tenant_id=acme.pk, start=FEB, end=FEB) == []


def test_another_tenants_id_reads_only_its_own_rows(ledger, globex):
    rows = usage_summary(tenant_id=globex.pk, start=JAN, end=FEB, by=["agent"])
    assert [(r["agent"], r["calls"], r["input_total"]) for r in rows] == [("alpha", 1, 10**6)]


@pytest.mark.parametrize("by", [[], ["tenant"], ["agent", "run_id"]])
def test_it_groups_only_by_known_columns(by):
    with pytest.raises(ValueError, match="usage is grouped by some of"):
        usage_summary(tenant_id=1, start=JAN, end=FEB, by=by)
