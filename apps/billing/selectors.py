"""Reads of the price list and of usage (charts, quotas, summaries), each inside the tenants' Row-Level
Security scope (rls.py)."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import BooleanField, Count, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.billing.models import Budget, Price, UsageDay, UsageMonth, UsageRecord
from apps.billing.quotas import CapUse, caps_of
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


def usage_month_ranking(*, tenant_ids: list[int], month: date) -> list[int]:
    """`tenant_ids` in the order of the platform's usage page: the tenants with usage in `month`,
    most tokens first (then most cost), then the others in the given order."""
    with usage_scope(*tenant_ids):
        ranked = list(
            UsageMonth.objects.filter(tenant_id__in=tenant_ids, month=month, project="")
            .order_by("-tokens", "-cost_usd", "tenant_id")
            .values_list("tenant_id", flat=True)
        )
    seen = set(ranked)
    return ranked + [tenant_id for tenant_id in tenant_ids if tenant_id not in seen]


def budget_list(*, tenant_id: int) -> list[Budget]:
    with usage_scope(tenant_id):
        return list(Budget.objects.filter(tenant_id=tenant_id).order_by("project"))


def quota_uses(*, tenant_id: int, budgets: list[Budget], month: date) -> list[CapUse]:
    """Every cap of the workspace and of each project with a budget, with this month's usage:
    the caps of `budgets` as given (the page lists those) and the plan's limits, read once."""
    from apps.tenants.limits import limits_for

    plan_tokens = limits_for(tenant_id).monthly_tokens
    by_project = {budget.project: budget for budget in budgets}
    caps = caps_of(plan_tokens, by_project, "")
    for budget in budgets:
        if budget.project:
            caps += [cap for cap in caps_of(plan_tokens, by_project, budget.project) if cap.project == budget.project]
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


USAGE_GROUPS = ("project", "agent", "provider", "model")


def _first_whole_day(start: datetime) -> date:
    """The first UTC day that lies wholly at or after `start`: its own day when it is midnight,
    else the next — none within the calendar after a start on its last day (date.max then,
    which no `day < end` admits)."""
    start = start.astimezone(UTC)
    if start == start.replace(hour=0, minute=0, second=0, microsecond=0):
        return start.date()
    return start.date() + timedelta(days=1) if start.date() < date.max else date.max


def usage_summary(
    *, tenant_id: int, start: datetime, end: datetime, by: Sequence[str] = ("agent", "model")
) -> list[dict]:
    """A tenant's model calls and tokens in [start, end), one row per group of `by`
    (a non-empty subset of USAGE_GROUPS), ordered by the group's names.

    Rows are dicts: the group's values, `calls`, `input_total`, `output_total`, `cached_total`,
    `cache_write_total`, `cost_total` (USD of the priced calls; None if none was) and `unpriced`
    (calls without a price).
    A model is always grouped with its provider (two providers may name models alike).

    Read from the ledger, day by day and group by group, except where retention has deleted a
    day's ledger rows (docs/retention.md, `usage_detail_days`): for a whole UTC day inside the
    period, each group counts from its daily roll-up when the roll-up holds more calls than the
    ledger still does. The ledger only grows and a day's roll-up counts what it held, so the larger
    is the day's full count either way (a day not rolled up yet, or rolled up before its last
    calls, counts from the ledger)."""
    unknown = [name for name in by if name not in USAGE_GROUPS]
    if unknown or not by:
        raise ValueError(f"usage is grouped by some of {USAGE_GROUPS}, not {list(by)}")
    keys = [name for name in USAGE_GROUPS if name in by or (name == "provider" and "model" in by)]
    sums = ("calls", "input_total", "output_total", "cached_total", "cache_write_total", "cost_total", "unpriced")
    ledger = (
        UsageRecord.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", *USAGE_GROUPS)
        .annotate(
            calls=Count("id"),
            input_total=Sum("input_tokens"),
            output_total=Sum("output_tokens"),
            cached_total=Sum("cached_tokens"),
            cache_write_total=Sum("cache_write_tokens"),
            cost_total=Sum("cost_usd"),
            unpriced=Count("id", filter=Q(cost_usd__isnull=True)),
        )
        .order_by()
    )
    first_whole = _first_whole_day(start)
    end_whole = end.astimezone(UTC).date()  # exclusive: the day `end` falls in is not whole
    with usage_scope(tenant_id):
        cells = {(row["day"], *(row[name] for name in USAGE_GROUPS)): row for row in ledger}
        rolled = UsageDay.objects.filter(tenant_id=tenant_id, day__gte=first_whole, day__lt=end_whole)
        for day in rolled.values("day", *USAGE_GROUPS, "calls", "input_tokens", "output_tokens", "cached_tokens",
                                 "cache_write_tokens", "cost_usd", "unpriced_calls"):  # fmt: skip
            cell = (day["day"], *(day[name] for name in USAGE_GROUPS))
            counted = cells.get(cell)
            if counted is None or day["calls"] > counted["calls"]:
                priced = day["calls"] - day["unpriced_calls"]
                cells[cell] = {
                    **{name: day[name] for name in USAGE_GROUPS},
                    "calls": day["calls"],
                    "input_total": day["input_tokens"],
                    "output_total": day["output_tokens"],
                    "cached_total": day["cached_tokens"],
                    "cache_write_total": day["cache_write_tokens"],
                    "cost_total": day["cost_usd"] if priced else None,
                    "unpriced": day["unpriced_calls"],
                }
    groups: dict[tuple, dict] = {}
    for cell in cells.values():
        group = tuple(cell[name] for name in keys)
        total = groups.get(group)
        if total is None:
            groups[group] = {**{name: cell[name] for name in keys}, **{name: cell[name] for name in sums}}
            continue
        for name in sums:
            if cell[name] is not None:
                total[name] = cell[name] if total[name] is None else total[name] + cell[name]
    return [groups[group] for group in sorted(groups)]
