"""Monthly quotas: what a tenant may still spend, checked before each model call.

Three caps can bind a model call of a run in project P, each per calendar month (UTC):
- the plan's monthly tokens (with the operator's override; apps/tenants/limits.py) — spent, the
  run stops with `quota_exceeded`, always;
- the workspace's budget (Budget with project ""), in tokens and/or USD;
- project P's budget, in tokens and/or USD.
A spent budget stops the run with `quota_exceeded`, or, when the budget's `on_exhausted` is
"approve", the run waits for a human to approve the overage; approved, that run goes on past
the budgets it had reached then, for the rest of that month (never past the plan). A budget it
reaches later, a budget changed since, or the same budget in another month asks again: an
approval names its caps by `CapUse.key` (month, scope, measure, amount).

Spending is read from UsageMonth, the running totals the ledger's own statement keeps, so a
check is one indexed read. An audit event (`quota.threshold`, outcome "failure" at 100%) is
written once per month, cap and measure when 80% and when 100% is reached: the claim on the
month's row (`tokens_alerted`/`cost_alerted`, with the cap it was a share of) makes it once even
with many workers. A cap changed meanwhile (a budget raised or lowered, a plan's tokens
overridden) is a new cap: its own 80% and 100% are announced when reached.

Budgets are cached per process for FOUNDRY_TENANT_ROUTE_TTL seconds, like limits.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from apps.billing.models import Budget, UsageMonth
from apps.billing.rls import usage_scope
from foundry.recent import RecentValues

THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class Cap:
    """One monthly cap: of the workspace (`project` "") or a project, in tokens or USD."""

    project: str
    measure: str  # "tokens" | "cost"
    limit: Decimal
    approvable: bool
    source: str  # "plan" | "budget"

    def describe(self) -> str:
        whose = f"project {self.project!r}" if self.project else "the workspace"
        amount = f"{int(self.limit):,} tokens" if self.measure == "tokens" else f"{self.limit} USD"
        what = "plan's monthly limit" if self.source == "plan" else "monthly budget"
        return f"{whose}'s {what} of {amount}"


@dataclass(frozen=True)
class CapUse:
    """How much of one monthly cap this month's usage has spent (`quota_check`'s answer when all)."""

    cap: Cap
    used: Decimal
    month: date | None = None  # the month it was read for

    @property
    def key(self) -> str:
        """What an approved overage names: this cap, at its amount, in its month."""
        month = self.month or month_of()
        return f"{month:%Y-%m}|{self.cap.project}|{self.cap.measure}|{self.cap.limit}"

    @property
    def approvable(self) -> bool:
        return self.cap.approvable

    @property
    def percent(self) -> float:
        if not self.cap.limit:
            return 100.0  # a zero cap is reached before anything is spent: it stops every call
        return float(self.used / self.cap.limit * 100)

    @property
    def shown_percent(self) -> float:
        return min(self.percent, 100.0)

    @property
    def message(self) -> str:
        used = f"{int(self.used):,} tokens" if self.cap.measure == "tokens" else f"{self.used} USD"
        return f"This month's usage ({used}) has reached {self.cap.describe()}."


_budgets: RecentValues[dict[str, Budget]] = RecentValues()


def budgets_of(tenant_id: int) -> dict[str, Budget]:
    """The tenant's budgets by project ("" for the workspace)."""

    def load() -> dict[str, Budget]:
        with usage_scope(tenant_id):
            return {budget.project: budget for budget in Budget.objects.filter(tenant_id=tenant_id)}

    return _budgets.get(tenant_id, load)


def budgets_cache_clear(tenant_id: int | None = None) -> None:
    _budgets.forget(None if tenant_id is None else (lambda key: key == tenant_id))


def caps_for(tenant_id: int, project: str) -> list[Cap]:
    """Every cap on a model call of `project`."""
    from apps.tenants.limits import limits_for

    return caps_of(limits_for(tenant_id).monthly_tokens, budgets_of(tenant_id), project)


def caps_of(plan_tokens: int | None, budgets: dict[str, Budget], project: str) -> list[Cap]:
    """Every cap on a model call of `project`, given the plan's monthly tokens and the budgets by
    project ("" for the workspace)."""
    caps = []
    if plan_tokens is not None:
        caps.append(Cap("", "tokens", Decimal(plan_tokens), False, "plan"))
    for scope in dict.fromkeys(("", project)):  # the workspace, then the project (once if the same)
        budget = budgets.get(scope)
        if budget is None:
            continue
        approvable = budget.on_exhausted == Budget.OnExhausted.APPROVE
        if budget.monthly_tokens is not None:
            caps.append(Cap(scope, "tokens", Decimal(budget.monthly_tokens), approvable, "budget"))
        if budget.monthly_cost_usd is not None:
            caps.append(Cap(scope, "cost", budget.monthly_cost_usd, approvable, "budget"))
    return caps


def month_of(moment=None) -> date:
    moment = (timezone.now() if moment is None else moment).astimezone(UTC)
    return date(moment.year, moment.month, 1)


def _used(row, measure: str) -> Decimal:
    if row is None:
        return Decimal(0)
    return Decimal(row["tokens"]) if measure == "tokens" else Decimal(row["cost_usd"])


def quota_check(
    *, tenant_id: int, project: str, approved: Collection[str] | bool = (), totals: "MonthTotals | None" = None
) -> list[CapUse]:
    """Before a model call: the caps this month's usage has reached, those nobody can approve
    past first; empty when the call may be made. `approved`: the keys (`CapUse.key`) of the caps
    a human approved this run's overage past — or True, from a run approved before approvals
    named their caps: every budget.

    `totals`: the month's totals the caller's last usage write returned (`month_totals`), when
    they are of this month; otherwise they are read. A run's second and later model calls are
    thus checked against the totals as of its previous call, which other runs of the tenant may
    have grown since — as they may between any check and the call it admits."""
    caps = [cap for cap in caps_for(tenant_id, project) if not (approved is True and cap.approvable)]
    if not caps:
        return []
    month = month_of()
    if totals is not None and totals.month == month:
        rows = totals.rows
    else:
        with usage_scope(tenant_id):
            rows = {
                row["project"]: row
                for row in UsageMonth.objects.filter(
                    tenant_id=tenant_id, month=month, project__in={"", project}
                ).values("project", "tokens", "cost_usd")
            }
    reached = []
    for cap in sorted(caps, key=lambda cap: cap.approvable):  # a cap nobody can approve first
        use = CapUse(cap, _used(rows.get(cap.project), cap.measure), month)
        if use.used >= cap.limit and not (cap.approvable and approved is not True and use.key in approved):
            _reached_announce(tenant_id, cap, month, rows.get(cap.project))
            reached.append(use)
    return reached


def _reached_announce(tenant_id: int, cap: Cap, month: date, row: dict | None) -> None:
    """A cap found reached before a call: its 80% and 100% marks, unless announced already. Usage
    announces them as it crosses them (quota_after_usage); a cap set or lowered below what the
    month has spent is crossed by no call (none is made), so it is announced here, once."""
    if row is None:  # nothing spent this month, against a cap of zero: the row the marks go on
        with usage_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO public.billing_usage_month (tenant_id, month, project, calls, tokens, cost_usd)"
                " VALUES (%s, %s, %s, 0, 0, 0) ON CONFLICT (tenant_id, month, project) DO NOTHING",
                [tenant_id, month, cap.project],
            )
        row = {"tokens": 0, "cost_usd": Decimal(0)}
    for mark in THRESHOLDS:
        _alert(tenant_id, cap, {**row, "month": month}, mark)


@dataclass(frozen=True)
class MonthTotals:
    """The month's totals (tokens, cost) of the workspace ("") and a project, as a usage write
    returned them."""

    month: date
    rows: dict[str, dict]


def month_totals(months: list) -> MonthTotals | None:
    """MonthTotals from usage.py's USAGE_RESULT month rows (None: nothing was written)."""
    if not months:
        return None
    rows = {project: {"tokens": tokens, "cost_usd": cost} for _month, project, tokens, cost, *_ in months}
    return MonthTotals(date.fromisoformat(str(months[0][0])), rows)


def quota_after_usage(record, months: list) -> None:
    """After a usage row was written, with the month's totals it led to (usage.py's USAGE_RESULT):
    the audit events of the 80% and 100% marks this call crossed."""
    if not months:
        return
    caps = caps_for(record.tenant_id, record.project)
    if not caps:
        return
    columns = (*_ALERTED, *(f"{column}_limit" for column in _ALERTED))
    totals = {
        project: {"month": month, "tokens": tokens, "cost_usd": cost, **dict(zip(columns, alerted, strict=True))}
        for month, project, tokens, cost, *alerted in months
    }
    for cap in caps:
        row = totals.get(cap.project)
        if row is None or not cap.limit:
            continue
        column = _alerted_column(cap)
        of = row[f"{column}_limit"]
        announced = row[column] if of is not None and Decimal(of) == cap.limit else 0  # else: another cap's
        share = _used(row, cap.measure) / cap.limit * 100
        # Every mark this call crossed, in order: one call may take the month past 80% and 100%.
        for mark in THRESHOLDS:
            if announced < mark <= share:
                _alert(record.tenant_id, cap, row, mark)


_ALERTED = ("tokens_alerted", "cost_alerted", "plan_tokens_alerted")


def _alerted_column(cap: Cap) -> str:
    """The month row's column of the share of `cap` announced: each cap its own (the plan's and a
    workspace budget's tokens are both counted on the "" row)."""
    if cap.source == "plan":
        return "plan_tokens_alerted"
    return "tokens_alerted" if cap.measure == "tokens" else "cost_alerted"


def _alert(tenant_id: int, cap: Cap, row: dict, reached: int) -> None:
    from apps.audit.models import Outcome
    from apps.audit.services import audit_record

    column = _alerted_column(cap)
    with usage_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE public.billing_usage_month SET {column} = %s, {column}_limit = %s"  # noqa: S608 - one of three
            f" WHERE tenant_id = %s AND month = %s AND project = %s"
            f" AND ({column} < %s OR {column}_limit IS DISTINCT FROM %s) RETURNING 1",
            [reached, cap.limit, tenant_id, row["month"], cap.project, reached, cap.limit],
        )
        claimed = cursor.fetchone() is not None
    if not claimed:
        return  # another worker announced it
    used = _used(row, cap.measure)
    audit_record(
        action="quota.threshold",
        actor="service:billing",
        data={
            "percent": reached,
            "project": cap.project,
            "measure": cap.measure,
            "source": cap.source,
            "used": str(used),
            "limit": str(cap.limit),
            "month": str(row["month"]),
            "message": CapUse(cap, used).message if reached >= 100 else f"80% of {cap.describe()} used.",
        },
        outcome=Outcome.FAILURE if reached >= 100 else Outcome.SUCCESS,
    )
