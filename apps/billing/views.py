"""The operator console (platform host only): the price list, every version, and a form that
sets a new one through `price_set`; the platform-wide usage of this month per tenant, largest
first, a page at a time, with the plan's cap, and a chart per day across tenants. Usage is read
in one transaction scoped to every tenant reported on (`usage_scope(*ids)`)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.access import operator_required
from apps.billing.forms import PriceSetForm
from apps.billing.quotas import month_of
from apps.billing.selectors import price_list, usage_month_ranking, usage_months
from apps.billing.services import price_set
from apps.billing.views_console import CHART_DAYS, choice_get, usage_charts
from apps.tenants.limits import limits_for_many
from apps.tenants.selectors import tenant_list
from foundry.errors import ServiceError, error_response
from foundry.forms import form_errors_add
from foundry.pages import page_of


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
    slugs = dict(tenant_list().order_by("slug", "id").values_list("pk", "slug"))
    ids = list(slugs)
    month = month_of()
    # Largest this month first (the workspaces with usage, by tokens), then the rest by slug.
    page, query = page_of(request, usage_month_ranking(tenant_ids=ids, month=month))
    shown = list(page)
    tenants = tenant_list().in_bulk(shown)
    months = usage_months(tenant_ids=shown, month=month)
    limits = limits_for_many(shown)
    rows = []
    for tenant_id in shown:
        if tenant_id not in tenants:  # purged since the list was read
            continue
        total = months.get((tenant_id, ""))
        cap = limits[tenant_id].monthly_tokens
        tokens = total.tokens if total else 0
        share = None if not cap else min(tokens / cap * 100, 999.9)
        rows.append({"tenant": tenants[tenant_id], "total": total, "tokens": tokens, "cap": cap, "share": share})
    names = {str(pk): slug for pk, slug in slugs.items()}
    context = {
        "rows": rows,
        "page": page,
        "query": query,
        "month": month,
        "days": days,
        "chart_days": CHART_DAYS,
        "charts": usage_charts(tenant_ids=ids, by="tenant_id", days=days, names=names),
    }
    return render(request, "billing/platform_usage.html", context)
