"""The platform operator console (bare base domain, public schema)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_tenants.utils import schema_context

from apps.accounts.access import operator_required
from apps.accounts.services import member_invite_url
from apps.tenants.forms import TenantCreateForm
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get, tenant_list
from apps.tenants.services import tenant_provision, tenant_resume, tenant_suspend
from foundry.errors import error_response
from foundry.forms import form_errors_add


def _tenant_url(request: HttpRequest, tenant: Tenant) -> str:
    port = request.get_port()
    default = "443" if request.is_secure() else "80"
    suffix = f":{port}" if port and port != default else ""
    scheme = "https" if request.is_secure() else "http"
    domain = tenant.domains.all()[0].domain if tenant.domains.all() else ""
    return f"{scheme}://{domain}{suffix}/"


def _list_context(request: HttpRequest, **extra) -> dict:
    tenants = list(tenant_list())
    for tenant in tenants:
        tenant.url = _tenant_url(request, tenant)
    return {"tenants": tenants, "form": extra.pop("form", None) or TenantCreateForm(), **extra}


@operator_required
def tenant_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "tenants/tenant_list.html", _list_context(request))


@operator_required
@require_POST
def tenant_create_view(request: HttpRequest) -> HttpResponse:
    form = TenantCreateForm(request.POST)
    invite_url = None
    if form.is_valid():
        try:
            result = tenant_provision(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as e:
            form_errors_add(form, e)
        else:
            tenant_url = _tenant_url(request, result.tenant)
            with schema_context(result.tenant.schema_name):
                invite_url = member_invite_url(user=result.owner, base_url=tenant_url)
            messages.success(request, f"Tenant {result.tenant.slug} created.")
            form = TenantCreateForm()
    status = 400 if form.errors else 200
    context = _list_context(request, form=form, invite_url=invite_url)
    return render(request, "tenants/tenant_list.html", context, status=status)


def _status_change(request: HttpRequest, slug: str, change) -> HttpResponse:
    try:
        tenant = tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    tenant = change(tenant=tenant, actor=request.user, request=request)
    messages.success(request, f"Tenant {tenant.slug} is now {tenant.get_status_display().lower()}.")
    return redirect("operator:tenant_list")


@operator_required
@require_POST
def tenant_suspend_view(request: HttpRequest, slug: str) -> HttpResponse:
    return _status_change(request, slug, tenant_suspend)


@operator_required
@require_POST
def tenant_resume_view(request: HttpRequest, slug: str) -> HttpResponse:
    return _status_change(request, slug, tenant_resume)
