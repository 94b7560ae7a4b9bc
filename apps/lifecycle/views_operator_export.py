"""Operator console: a workspace's exports (PRODUCT.md: platform console, tenants: export), on
the platform host. The same export job as the workspace's own console and API start
(apps/lifecycle/exports.py), started by the operator (recorded on the workspace's trail as
theirs, `operator:<id>`) and holding members' password hashes, as `manage.py export_tenant`
does; downloaded here through the same expiring signed link."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_safe
from django_tenants.utils import tenant_context

from apps.accounts.access import operator_required
from apps.lifecycle.exports import (
    export_error,
    export_link_expired,
    export_link_signature,
    export_list,
    export_start,
)
from apps.lifecycle.views_export import export_download_answer
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tenants.services import tenant_row_locked
from foundry.errors import ServiceError, error_response


def _tenant(slug: str) -> Tenant | None:
    try:
        return tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        return None


def _exports(tenant: Tenant) -> list:
    """The workspace's exports (the connection on its schema), each with its download link."""
    exports = list(export_list())
    for export in exports:
        export.expired = export_link_expired(export)
        export.error_code, export.error_message = export_error(export) if export.error else ("", "")
        export.download_url = ""
        if export.status == export.Status.SUCCEEDED and not export.expired:
            path = reverse("lifecycle:tenant_export_download", args=[tenant.slug, export.pk])
            export.download_url = f"{path}?{urlencode({'signature': export_link_signature(export)})}"
    return exports


@operator_required
@require_http_methods(["GET", "HEAD", "POST"])
def tenant_exports_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The workspace's exports; POST starts one."""
    tenant = _tenant(slug)
    if tenant is None:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    error = None
    try:
        with transaction.atomic():
            tenant = tenant_row_locked(tenant)  # purged by another operator meanwhile: 404
            with tenant_context(tenant):
                if request.method == "POST":
                    _active(tenant)
                    export_start(actor=request.user, request=request)
                    messages.success(request, f"Export of {tenant.slug} started: it is listed below with its progress.")
                    return redirect("lifecycle:tenant_exports", tenant.slug)
                exports = _exports(tenant)
    except ServiceError as e:
        if e.code == "tenant_not_found":
            return error_response(request, status=e.status, code=e.code, message=e.message)
        error = e
        with tenant_context(tenant):
            exports = _exports(tenant)
    # `edited_tenant`: `tenant` is the console's own (none on the platform host), which the header shows.
    context = {"edited_tenant": tenant, "exports": exports, "error": error, "operator": True}
    return render(request, "lifecycle/tenant_exports.html", context, status=error.status if error else 200)


def _active(tenant: Tenant) -> None:
    """Only an active workspace's export job runs (a worker refuses a suspended or deleting one's,
    which would wait as queued until a resume, or the purge): refused, nothing started."""
    if not tenant.is_active:
        raise ServiceError(
            "tenant_not_active",
            f"{tenant.slug} is {tenant.get_status_display().lower()}: its export would not run until it is "
            "resumed. Resume it first, or export it with `manage.py export_tenant`.",
            status=409,
        )


@operator_required
@require_safe
def tenant_export_download(request: HttpRequest, slug: str, export_id: str) -> HttpResponse:
    tenant = _tenant(slug)
    if tenant is None:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    with transaction.atomic():
        try:
            tenant = tenant_row_locked(tenant)  # purged by another operator meanwhile: 404
        except ServiceError as e:
            return error_response(request, status=e.status, code=e.code, message=e.message)
        with tenant_context(tenant):
            return export_download_answer(request, export_id)
