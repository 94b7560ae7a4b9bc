"""Console pages of export jobs (settings.manage: owners and admins): start one, follow it, download.

The list polls its rows (`export_rows`) every second while an export is queued or running, and
stops once none is. Thin: apps/lifecycle/exports.py starts, signs and checks.
"""

import hashlib

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
    exports_lost_fail,
)
from foundry.errors import ServiceError, error_response


def _rows_context(user) -> dict:
    exports = list(export_list())
    if exports_lost_fail(exports):
        exports = list(export_list())  # one lost is shown failed, and not polled for
    for export in exports:
        export.expired = export_link_expired(export)
        export.error_code, export.error_message = export_error(export) if export.error else ("", "")
        export.download_url = (
            export_download_url(export, url_name="lifecycle:export_download")
            if export.status == export.Status.SUCCEEDED and not export.expired and export_downloadable_by(export, user)
            else ""
        )
    shown = [(e.pk, e.status, e.rows_done, e.rows_total, e.size, e.expired, bool(e.download_url)) for e in exports]
    said = [(e.pk, e.status) for e in exports]
    return {
        "exports": exports,
        "live": any(e.status in ACTIVE for e in exports),
        # What the page shows, and what its live region says (statuses, not progress): the poll
        # is answered 204 while the first is as the page has it, and the region is rewritten only
        # when the second changed, so a screen reader is not read the table every second.
        "version": _digest(shown),
        "said": _digest(said),
        "announcement": _announcement(exports),
    }


def _digest(value) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _announcement(exports: list) -> str:
    if not exports:
        return ""
    latest = exports[0]
    text = f"Latest export: {latest.get_status_display().lower()}"
    return f"{text} ({latest.error_code})." if latest.error_code else f"{text}."


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
    """The list's rows (htmx polling): 204 while they are as the page shows them (`?v=`); with
    the live region's words when the statuses changed since the page's (`?s=`)."""
    context = _rows_context(request.user)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    return render(
        request, "lifecycle/_export_rows.html", {**context, "announce": request.GET.get("s") != context["said"]}
    )


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
