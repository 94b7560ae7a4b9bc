"""Operator console: schedule, cancel and carry out a workspace's deletion (apps/lifecycle/deletion.py),
from the tenant list. The services judge; these only parse and report."""

import re
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from apps.accounts.access import operator_required
from apps.lifecycle.deletion import tenant_deletion_cancel, tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tenants.views import tenant_list_redirect, tenant_list_refused
from foundry.errors import ServiceError, error_response


def _act(request: HttpRequest, slug: str, action: Callable[[Tenant], str]) -> HttpResponse:
    """Run `action` on the tenant (it returns the message of success) and go back to the tenant
    list; a refusal shows the list with its reason, answered 4xx."""
    try:
        tenant = tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    try:
        messages.success(request, action(tenant))
    except ServiceError as e:
        return tenant_list_refused(request, e, tenant.slug)
    return tenant_list_redirect(tenant.slug)


_DAYS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _grace_days(value: str) -> float | None:
    """The form's grace period in days; blank: the platform's default."""
    value = (value or "").strip()
    if not value:
        return None
    if not _DAYS.fullmatch(value):  # float() also reads fullwidth digits, "1e1", "inf"
        raise ServiceError("grace_invalid", "The grace period is a number of days.")
    return float(value)


@operator_required
@require_POST
def tenant_deletion_schedule_view(request: HttpRequest, slug: str) -> HttpResponse:
    def schedule(tenant: Tenant) -> str:
        grace = _grace_days(request.POST.get("grace_days", ""))
        tenant = tenant_deletion_schedule(tenant=tenant, actor=request.user, grace_days=grace, request=request)
        return f"{tenant.slug} is suspended and may be purged from {tenant.purge_after:%Y-%m-%d %H:%M} UTC."

    return _act(request, slug, schedule)


@operator_required
@require_POST
def tenant_deletion_cancel_view(request: HttpRequest, slug: str) -> HttpResponse:
    def cancel(tenant: Tenant) -> str:
        tenant = tenant_deletion_cancel(tenant=tenant, actor=request.user, request=request)
        return f"Deletion of {tenant.slug} cancelled; it is {tenant.get_status_display().lower()} again."

    return _act(request, slug, cancel)


@operator_required
@require_POST
def tenant_purge_view(request: HttpRequest, slug: str) -> HttpResponse:
    def purge(tenant: Tenant) -> str:
        if request.POST.get("confirm", "").strip() != tenant.slug:
            raise ServiceError("confirm_mismatch", f"Type the slug “{tenant.slug}” to confirm the purge.")
        purged = tenant_purge(tenant=tenant, actor=request.user, request=request)
        return f"{purged.slug} purged: {purged.total} rows in {len(purged.rows)} tables."

    return _act(request, slug, purge)
