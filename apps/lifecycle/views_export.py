"""Console pages of export jobs (settings.manage: owners and admins): start one, follow it, download.

The list polls its rows (`export_rows`) every second while an export is queued or running, and
stops once none is. Thin: apps/lifecycle/exports.py starts, signs and checks.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.lifecycle.exports import (
    ACTIVE,
    export_download_url,
    export_downloadable_by,
    export_error,
    export_file_response,
    export_for_download,
    export_link_expired,
    export_list,
    export_start,
)
from foundry.errors import ServiceError, error_response


def _rows_context(user) -> dict:
    exports = list(export_list())
    for export in exports:
        export.expired = export_link_expired(export)
        export.error_code, export.error_message = export_error(export) if export.error else ("", "")
        export.download_url = (
            export_download_url(export, url_name="lifecycle:export_download")
            if export.status == export.Status.SUCCEEDED and not export.expired and export_downloadable_by(export, user)
            else ""
        )
    return {"exports": exports, "live": any(e.status in ACTIVE for e in exports)}


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def export_list_view(request: HttpRequest) -> HttpResponse:
    """The workspace's exports; POST starts one."""
    if request.method in ("GET", "HEAD"):
        return render(request, "lifecycle/export_list.html", _rows_context(request.user))
    try:
        export_start(actor=request.user, request=request)
    except ServiceError as e:
        context = {**_rows_context(request.user), "error": e}
        return render(request, "lifecycle/export_list.html", context, status=e.status)
    messages.success(request, "Export started: it is listed below with its progress.")
    return redirect("lifecycle:export_list")


@require_permission(Permission.SETTINGS_MANAGE)
@require_safe
def export_rows(request: HttpRequest) -> HttpResponse:
    """The list's rows (htmx polling)."""
    return render(request, "lifecycle/_export_rows.html", _rows_context(request.user))


def export_download_answer(request: HttpRequest, export_id) -> HttpResponse:
    """The archive a signed download link names (the connection on its workspace), or why not."""
    try:
        export = export_for_download(
            export_id=export_id, signature=request.GET.get("signature"), actor=request.user, request=request
        )
    except ServiceError as e:
        return error_response(request, status=e.status, code=e.code, message=e.message)
    return export_file_response(export)


@require_permission(Permission.SETTINGS_MANAGE)
@require_safe
def export_download(request: HttpRequest, export_id) -> HttpResponse:
    return export_download_answer(request, export_id)
