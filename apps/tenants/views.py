"""The platform operator console (bare base domain, public schema): tenants, each tenant's limits
(its plan's values and the operator's overrides, set through `tenant_limits_set`), the plans'
values (changed through `plan_update`) and the platform's health. The forms only parse; the
services judge."""

from collections import Counter
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_tenants.utils import schema_context

from apps.accounts.access import operator_required
from apps.accounts.services import member_invite_url
from apps.tenants.forms import LIMIT_LABELS, PlanUpdateForm, TenantCreateForm, TenantLimitsForm
from apps.tenants.limits import LIMIT_NAMES, limits_for
from apps.tenants.models import Plan, Tenant
from apps.tenants.selectors import tenant_get, tenant_list
from apps.tenants.services import plan_update, tenant_limits_set, tenant_provision, tenant_resume, tenant_suspend
from foundry.errors import ServiceError, error_response
from foundry.forms import form_errors_add
from foundry.health import queue_depths, readiness, scheduled_jobs
from foundry.pages import page_of


def tenant_address(request: HttpRequest, tenant: Tenant) -> str:
    """The workspace's address as the operator's browser reaches the platform: the port of the
    request's Host (checked against ALLOWED_HOSTS), never the one the server listens on — behind
    a TLS proxy that is an internal port no browser reaches."""
    port = split_domain_port(request.get_host())[1]
    default = "443" if request.is_secure() else "80"
    suffix = f":{port}" if port and port != default else ""
    scheme = "https" if request.is_secure() else "http"
    return f"{scheme}://{tenant.primary_host}{suffix}/"


SEARCH_MAX_LENGTH = 100


def _list_context(request: HttpRequest, *, shown: str | None = None, **extra) -> dict:
    """The tenant list's context: the tenants whose slug or name holds `?q=` (after an action on
    one tenant, `shown`: that tenant's slug), a page at a time."""
    search = (request.GET.get("q", "") if shown is None else shown).replace("\x00", "").strip()[:SEARCH_MAX_LENGTH]
    tenants = tenant_list()
    if search:
        tenants = tenants.filter(Q(slug__icontains=search) | Q(name__icontains=search))
    page, query = page_of(request, tenants.order_by("slug", "id"))
    if shown is not None:
        query = urlencode({"q": shown})
    for tenant in page:
        tenant.url = tenant_address(request, tenant)
    form = extra.pop("form", None) or TenantCreateForm()
    days = f"{settings.FOUNDRY_TENANT_DELETION_GRACE_DAYS:g}"
    return {
        "tenants": page,
        "page": page,
        "query": query,
        "search": search,
        "form": form,
        "grace_days": days,
        **extra,
    }


def tenant_list_redirect(slug: str) -> HttpResponse:
    """Back to the tenant list after an action on one tenant, found by its slug so its new state
    shows whatever page it is on."""
    return redirect(f"{reverse('operator:tenant_list')}?{urlencode({'q': slug})}")


@operator_required
@require_safe
def tenant_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "tenants/tenant_list.html", _list_context(request))


@operator_required
@require_POST
def tenant_create_view(request: HttpRequest) -> HttpResponse:
    form = TenantCreateForm(request.POST)
    invite_url = shown = None
    if form.is_valid():
        try:
            result = tenant_provision(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as e:
            form_errors_add(form, e)
        else:
            tenant_url = tenant_address(request, result.tenant)
            with schema_context(result.tenant.schema_name):
                invite_url = member_invite_url(user=result.owner, base_url=tenant_url)
            messages.success(request, f"Tenant {result.tenant.slug} created.")
            form, shown = TenantCreateForm(), result.tenant.slug
    status = 400 if form.errors else 200
    context = _list_context(request, form=form, invite_url=invite_url, shown=shown)
    return render(request, "tenants/tenant_list.html", context, status=status)


def _status_change(request: HttpRequest, slug: str, change) -> HttpResponse:
    try:
        tenant = tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    try:
        tenant = change(tenant=tenant, actor=request.user, request=request)
    except ServiceError as e:
        return tenant_list_refused(request, e, tenant.slug)
    messages.success(request, f"Tenant {tenant.slug} is now {tenant.get_status_display().lower()}.")
    return tenant_list_redirect(tenant.slug)


def tenant_list_refused(request: HttpRequest, error: ServiceError, slug: str) -> HttpResponse:
    """An action on the tenant `slug` refused: the list again, showing that tenant, with the
    reason, answered 4xx."""
    messages.error(request, error.message)
    status = error.status if 400 <= error.status < 500 else 400
    return render(request, "tenants/tenant_list.html", _list_context(request, shown=slug), status=status)


@operator_required
@require_POST
def tenant_suspend_view(request: HttpRequest, slug: str) -> HttpResponse:
    return _status_change(request, slug, tenant_suspend)


@operator_required
@require_POST
def tenant_resume_view(request: HttpRequest, slug: str) -> HttpResponse:
    return _status_change(request, slug, tenant_resume)


def _shown(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


def _limits_page(request: HttpRequest, tenant: Tenant, form: TenantLimitsForm, *, status: int = 200) -> HttpResponse:
    limits = limits_for(tenant)
    plan = Plan.objects.filter(pk=limits.plan).first()
    rows = [
        {
            "name": name,
            "label": LIMIT_LABELS[name],
            "value": _shown(getattr(limits, name)),
            "source": "override" if name in limits.overridden else "plan",
            "plan_value": _shown(getattr(plan, name)) if plan else "—",
            "field": form[name],
        }
        for name in LIMIT_NAMES
    ]
    # Not `tenant`: base.html reads that as the workspace being browsed, and this is the operator console.
    context = {"edited_tenant": tenant, "limits": limits, "rows": rows, "form": form}
    return render(request, "tenants/tenant_limits.html", context, status=status)


@operator_required
@require_http_methods(["GET", "HEAD", "POST"])
def tenant_limits_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        tenant = tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    if request.method != "POST":
        initial = {name: getattr(tenant, f"{name}_override") for name in LIMIT_NAMES}
        return _limits_page(request, tenant, TenantLimitsForm(initial=initial))
    form = TenantLimitsForm(request.POST)
    if form.is_valid():
        try:
            tenant_limits_set(tenant=tenant, overrides=form.changes(), actor=request.user, request=request)
        except ServiceError as e:
            if e.code == "tenant_not_found":  # purged by another operator meanwhile
                return error_response(request, status=404, code=e.code, message=e.message)
            for name, message in (e.details or {None: e.message}).items():
                form.add_error(name if name in form.fields else None, ValidationError(message, code=e.code))
        else:
            messages.success(request, f"Limits of {tenant.slug} set.")
            return redirect("operator:tenant_limits", slug=tenant.slug)
    return _limits_page(request, tenant, form, status=400)


def _plans_page(request: HttpRequest, form: PlanUpdateForm, *, status: int = 200) -> HttpResponse:
    plans = list(Plan.objects.all())
    tenants_on = Counter(tenant_list().values_list("plan", flat=True))
    rows = [
        {
            "plan": plan,
            "values": [_shown(getattr(plan, name)) for name in LIMIT_NAMES],
            "tenants": tenants_on.get(plan.pk, 0),
        }
        for plan in plans
    ]
    context = {"rows": rows, "labels": [LIMIT_LABELS[name] for name in LIMIT_NAMES], "form": form}
    return render(request, "tenants/plan_list.html", context, status=status)


@operator_required
@require_http_methods(["GET", "HEAD", "POST"])
def plan_list_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        # ?plan=team fills the form with that plan's values, to edit them.
        name = request.GET.get("plan")
        plan = Plan.objects.filter(pk=name).first() if name in Tenant.Plan.values else None
        initial = {"plan": plan.pk, **{name: getattr(plan, name) for name in LIMIT_NAMES}} if plan else {}
        return _plans_page(request, PlanUpdateForm(initial=initial))
    form = PlanUpdateForm(request.POST)
    if form.is_valid():
        try:
            plan = plan_update(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as e:
            form_errors_add(form, e)
        else:
            messages.success(request, f"Plan {plan.pk} updated.")
            return redirect("operator:plan_list")
    return _plans_page(request, form, status=400)


@operator_required
@require_http_methods(["GET", "HEAD"])
def health_view(request: HttpRequest) -> HttpResponse:
    """What /readyz checks (PostgreSQL, Redis, the broker, live workers), each with its latency
    or why it failed, the Celery queues' depths, when beat last sent each scheduled job, and the
    workspaces by status, read now."""
    ready, checks = readiness()
    statuses = Counter(Tenant.objects.values_list("status", flat=True))
    context = {
        "ready": ready,
        "checks": checks,
        "workers_required": settings.FOUNDRY_READY_REQUIRES_WORKER,
        "queues": queue_depths(),
        "jobs": scheduled_jobs(),
        "tenant_statuses": [(label, statuses.get(value, 0)) for value, label in Tenant.Status.choices],
    }
    return render(request, "tenants/health.html", context)
