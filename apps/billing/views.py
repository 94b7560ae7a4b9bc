"""The operator console (platform host only): the price list, every version, and a form that
sets a new one through `price_set`; the platform-wide usage of this month per tenant, with the
plan's cap, and a chart per day across tenants. Usage is read in one transaction scoped to every
tenant reported on (`usage_scope(*ids)`)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.access import operator_required
from apps.billing.forms import PriceSetForm
from apps.billing.quotas import month_of
from apps.billing.selectors import price_list, usage_months
from apps.billing.services import price_set
from apps.billing.views_console import CHART_DAYS, choice_get, usage_charts
from apps.tenants.limits import limits_for_many
from apps.tenants.selectors import tenant_list
from foundry.errors import ServiceError, error_response
from foundry.forms import form_errors_add


def _page(request: HttpRequest, form: PriceSetForm, *, status: int = 200) -> HttpResponse:
    return render(request, "billing/price_list.html", {"prices": price_list(), "form": form}, status=status)


@operator_required
@require_safe
def price_list_view(request: HttpRequest) -> HttpResponse:
    return _page(request, PriceSetForm())


@operator_required
@require_POST
def price_set_view(request: HttpRequest) -> HttpResponse:
    form = PriceSetForm(request.POST)
    if form.is_valid():
        try:
            price = price_set(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as e:
            form_errors_add(form, e)
        else:
            messages.success(request, f"Price set: {price}.")
            return redirect("billing:price_list")
    return _page(request, form, status=400)


@operator_required
@require_safe
def platform_usage_view(request: HttpRequest) -> HttpResponse:
    try:
        days = choice_get(request, "days", CHART_DAYS, 30)
    except ServiceError as e:
        return error_response(request, status=400, code=e.code, message=e.message)
    tenants = list(tenant_list().order_by("slug"))
    ids = [tenant.pk for tenant in tenants]
    month = month_of()
    months = usage_months(tenant_ids=ids, month=month)
    limits = limits_for_many(ids)
    rows = []
    for tenant in tenants:
        total = months.get((tenant.pk, ""))
        cap = limits[tenant.pk].monthly_tokens
        tokens = total.tokens if total else 0
        share = None if not cap else min(tokens / cap * 100, 999.9)
        rows.append({"tenant": tenant, "total": total, "tokens": tokens, "cap": cap, "share": share})
    names = {str(tenant.pk): tenant.slug for tenant in tenants}
    context = {
        "rows": rows,
        "month": month,
        "days": days,
        "chart_days": CHART_DAYS,
        "charts": usage_charts(tenant_ids=ids, by="tenant_id", days=days, names=names),
    }
    return render(request, "billing/platform_usage.html", context)
