"""Operator console: a workspace's exports (PRODUCT.md: platform console, tenants: export), on
the platform host. The same export job as the workspace's own console and API start
(apps/lifecycle/exports.py), started by the operator (recorded on the workspace's trail as
theirs, `operator:<id>`) and holding members' password hashes, as `manage.py export_tenant`
does; downloaded here through the same expiring signed link."""

from django.contrib import messages
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
    with tenant_context(tenant):
        if request.method == "POST":
            try:
                export_start(actor=request.user, request=request)
            except ServiceError as e:
                error = e
            else:
                messages.success(request, f"Export of {tenant.slug} started: it is listed below with its progress.")
                return redirect("lifecycle:tenant_exports", tenant.slug)
        context = {"tenant": tenant, "exports": _exports(tenant), "error": error, "operator": True}
    return render(request, "lifecycle/tenant_exports.html", context, status=error.status if error else 200)


@operator_required
@require_safe
def tenant_export_download(request: HttpRequest, slug: str, export_id: str) -> HttpResponse:
    tenant = _tenant(slug)
    if tenant is None:
        return error_response(request, status=404, code="tenant_not_found", message="No such tenant.")
    with tenant_context(tenant):
        return export_download_answer(request, export_id)
