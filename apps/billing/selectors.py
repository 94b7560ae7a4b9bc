"""Reads of the price list, and of usage for the console's pages."""

from datetime import date
from decimal import Decimal

from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from apps.billing.models import Budget, Price, UsageMonth
from apps.billing.quotas import CapUse, caps_for
from apps.billing.rls import usage_scope
from apps.billing.rollups import usage_daily


def price_list() -> QuerySet[Price]:
    """Every price version, newest first per provider/model, each marked `is_current` (the one a
    usage record written now is priced with) or `is_scheduled` (starts later)."""
    now = timezone.now()
    in_effect = Price.objects.filter(
        provider=OuterRef("provider"), model=OuterRef("model"), effective_from__lte=now
    ).order_by("-effective_from")
    return Price.objects.annotate(
        is_current=ExpressionWrapper(Q(pk=Subquery(in_effect.values("pk")[:1])), output_field=BooleanField()),
        is_scheduled=ExpressionWrapper(Q(effective_from__gt=now), output_field=BooleanField()),
    ).order_by("provider", "model", "-effective_from")


# --- usage ---------------------------------------------------------------------------------------


def usage_months(*, tenant_ids: list[int], month: date) -> dict[tuple[int, str], UsageMonth]:
    """The running totals of `month` of each tenant (project "" is the whole workspace)."""
    with usage_scope(*tenant_ids):
        return {
            (row.tenant_id, row.project): row
            for row in UsageMonth.objects.filter(tenant_id__in=tenant_ids, month=month)
        }


def budget_list(*, tenant_id: int) -> list[Budget]:
    with usage_scope(tenant_id):
        return list(Budget.objects.filter(tenant_id=tenant_id).order_by("project"))


def quota_uses(*, tenant_id: int, budgets: list[Budget], month: date) -> list[CapUse]:
    """Every cap of the workspace and of each project with a budget, with this month's usage."""
    caps = list(caps_for(tenant_id, ""))
    for budget in budgets:
        if budget.project:
            caps += [cap for cap in caps_for(tenant_id, budget.project) if cap.project == budget.project]
    months = usage_months(tenant_ids=[tenant_id], month=month)
    uses = []
    for cap in caps:
        row = months.get((tenant_id, cap.project))
        used = Decimal(0) if row is None else Decimal(row.tokens if cap.measure == "tokens" else row.cost_usd)
        uses.append(CapUse(cap, used))
    return uses


def usage_top(*, tenant_id: int, start: date, end: date, by: str = "agent", limit: int = 10) -> list[dict]:
    """The `limit` largest agents (or models) of [start, end) by tokens: key, calls, tokens, cost_usd."""
    totals: dict[str, dict] = {}
    for row in usage_daily(tenant_ids=[tenant_id], start=start, end=end, by=by):
        total = totals.setdefault(row["key"], {"key": row["key"], "calls": 0, "tokens": 0, "cost_usd": Decimal(0)})
        for name in ("calls", "tokens", "cost_usd"):
            total[name] += row[name]
    return sorted(totals.values(), key=lambda t: (-t["tokens"], t["key"]))[:limit]
