"""The workspace's usage page (tenant hosts): tokens and cost per day as SVG charts stacked by
agent or model, this month's consumption of each quota, the top agents, the monthly statement
download, and the budgets, which admins set through `budget_set`.

Reading usage is `usage.view` (every role: the same figures MCP `get_usage` gives); setting a
budget is `settings.manage` (admins and owners).
"""

from datetime import UTC, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.billing.charts import compact, series_table, stacked_bars, top_series, usd
from apps.billing.forms import BudgetSetForm
from apps.billing.quotas import month_of
from apps.billing.rollups import usage_daily
from apps.billing.selectors import budget_list, quota_uses, usage_months, usage_top
from apps.billing.services import budget_set
from apps.billing.statements import Statement, statement, statement_query
from foundry.errors import ServiceError, error_response
from foundry.forms import form_errors_add
from foundry.query import query_once

CHART_DAYS = (7, 30, 90)
CHART_BY = ("agent", "model")
STATEMENT_MONTHS = 12


def choice_get(request: HttpRequest, name: str, choices: tuple, default):
    value = query_once(request.GET, name, f"{name}_invalid")
    if value in (None, ""):
        return default
    for choice in choices:
        if value == str(choice):
            return choice
    raise ServiceError(f"{name}_invalid", f"{name} is one of {', '.join(map(str, choices))}.")


def usage_charts(*, tenant_ids: list[int], by: str, days: int, names: dict | None = None) -> dict:
    """The two charts of the last `days` days (tokens, cost), stacked by `by`; `names` renames keys."""
    today = timezone.now().astimezone(UTC).date()
    start = today - timedelta(days=days - 1)
    categories = [start + timedelta(days=i) for i in range(days)]
    rows = usage_daily(tenant_ids=tenant_ids, start=start, end=today + timedelta(days=1), by=by)
    if names:
        rows = [{**row, "key": names.get(row["key"], row["key"])} for row in rows]
    labels = [f"{day:%m-%d}" for day in categories]
    word = {"tenant_id": "workspace"}.get(by, by)
    charts = {}
    for name, measure, title, value_format in (
        ("tokens", "tokens", f"Tokens per day, last {days} days (UTC), by {word}", compact),
        ("cost", "cost_usd", f"Cost per day in USD, last {days} days (UTC), by {word}", usd),
    ):
        drawn = {"chart_id": f"chart-{name}", "title": title, "categories": labels, "value_format": value_format}
        series = top_series(rows, categories=categories, measure=measure)
        charts[name] = stacked_bars(**drawn, series=series)
        charts[f"{name}_table"] = series_table(**drawn, series=series)
    return charts


def _page(request: HttpRequest, *, form: BudgetSetForm | None = None, status: int = 200) -> HttpResponse:
    try:
        by = choice_get(request, "by", CHART_BY, "agent")
        days = choice_get(request, "days", CHART_DAYS, 30)
    except ServiceError as e:
        return error_response(request, status=400, code=e.code, message=e.message)
    tenant_id = request.tenant.pk
    month = month_of()
    today = timezone.now().astimezone(UTC).date()
    budgets = budget_list(tenant_id=tenant_id)
    can_manage = request.user.has_permission(Permission.SETTINGS_MANAGE)
    context = {
        "by": by,
        "days": days,
        "chart_by": CHART_BY,
        "chart_days": CHART_DAYS,
        "charts": usage_charts(tenant_ids=[tenant_id], by=by, days=days),
        "month": month,
        "month_total": usage_months(tenant_ids=[tenant_id], month=month).get((tenant_id, "")),
        "quotas": quota_uses(tenant_id=tenant_id, budgets=budgets, month=month),
        "top_agents": usage_top(tenant_id=tenant_id, start=month, end=today + timedelta(days=1)),
        "budgets": budgets,
        "can_manage": can_manage,
        "form": (form or BudgetSetForm()) if can_manage else None,
        "statement_months": [f"{_months_back(month, n):%Y-%m}" for n in range(STATEMENT_MONTHS)],
    }
    return render(request, "billing/usage.html", context, status=status)


def _months_back(month, n: int):
    index = month.year * 12 + month.month - 1 - n
    return month.replace(year=index // 12, month=index % 12 + 1)


@require_permission(Permission.USAGE_VIEW)
@require_safe
def usage_view(request: HttpRequest) -> HttpResponse:
    return _page(request)


def statement_file(result: Statement, fmt: str) -> HttpResponse:
    """The statement as a download: CSV, or JSON."""
    if fmt == "csv":
        response = HttpResponse(result.to_csv(), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(result.to_json(), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{result.filename}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@require_permission(Permission.USAGE_VIEW)
@require_safe
def usage_statement_view(request: HttpRequest) -> HttpResponse:
    try:
        fmt, period = statement_query(request.GET)
    except ServiceError as e:
        return error_response(request, status=400, code=e.code, message=e.message)
    result = statement(tenant_id=request.tenant.pk, tenant_slug=request.tenant.slug, period=period)
    return statement_file(result, fmt)


@require_permission(Permission.SETTINGS_MANAGE)
@require_POST
def budget_set_view(request: HttpRequest) -> HttpResponse:
    form = BudgetSetForm(request.POST)
    if form.is_valid():
        project = form.cleaned_data["project"]
        had = any(budget.project == project for budget in budget_list(tenant_id=request.tenant.pk))
        try:
            budget = budget_set(
                actor=request.user,
                tenant_id=request.tenant.pk,
                request=request,
                project=project,
                monthly_tokens=form.cleaned_data["monthly_tokens"],
                monthly_cost_usd=form.cleaned_data["monthly_cost_usd"],
                on_exhausted=form.cleaned_data["on_exhausted"] or "stop",
            )
        except ValidationError as e:
            form_errors_add(form, e)
        else:
            whose = f"project {project}" if project else "workspace"
            if budget is not None or had:
                messages.success(request, f"Budget of the {whose} {'set' if budget else 'removed'}.")
            else:
                messages.info(request, f"The {whose} has no budget to remove: nothing changed.")
            return redirect("billing:usage")
    return _page(request, form=form, status=400)
