"""The operator console's price list (platform host only): every version, and a form that sets
a new one through `price_set`."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.access import operator_required
from apps.billing.forms import PriceSetForm
from apps.billing.selectors import price_list
from apps.billing.services import price_set
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
