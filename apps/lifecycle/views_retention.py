"""The console's retention settings page (settings.manage: owners and admins): the policy, its
form, and a preview of what a pass would delete now (htmx, into the page). Thin: the services
are in apps/lifecycle/retention.py."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.access import access_denied_record, require_permission
from apps.accounts.permissions import Permission
from apps.lifecycle.forms_retention import LABELS, RetentionPolicyForm
from apps.lifecycle.retention import (
    KINDS,
    retention_apply,
    retention_policy_dict,
    retention_policy_get,
    retention_policy_set,
)
from foundry.forms import form_errors_add

KIND_LABELS = {
    "runs": "Finished runs (with their sub-agent runs)",
    "checkpoints": "Checkpoints before a run's final state",
    "usage_detail": "Usage records (rolled up)",
    "traces": "Trace references cleared",
    "exports": "Export archives",
    "audit": "Audit events",
}


def _page(request: HttpRequest, form: RetentionPolicyForm, *, status: int = 200, preview=None) -> HttpResponse:
    context = {"form": form, "policy": retention_policy_get(), "labels": LABELS, "rows": preview}
    return render(request, "lifecycle/retention.html", context, status=status)


def _form() -> RetentionPolicyForm:
    values = retention_policy_dict(retention_policy_get())
    return RetentionPolicyForm(initial={name: "" if value is None else value for name, value in values.items()})


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def retention_view(request: HttpRequest) -> HttpResponse:
    """The policy; POST changes it."""
    if request.method in ("GET", "HEAD"):
        return _page(request, _form())
    form = RetentionPolicyForm(request.POST)
    if form.is_valid():
        try:
            retention_policy_set(actor=request.user, request=request, **form.values())
        except ValidationError as e:
            form_errors_add(form, e)
        except PermissionDenied as e:  # an admin lifting a legal hold: refused, recorded as any refusal is
            access_denied_record(request, request.user, reason=str(e)[:200])
            form.add_error("audit_legal_hold", str(e))
            return _page(request, form, status=403)
        else:
            messages.success(request, "Retention policy saved. It applies from the next nightly pass.")
            return redirect("lifecycle:retention")
    return _page(request, form, status=400)


@require_permission(Permission.SETTINGS_MANAGE)
@require_POST
def retention_preview(request: HttpRequest) -> HttpResponse:
    """What a pass would delete now (a dry run: nothing is deleted), as the page's partial."""
    counts = retention_apply(tenant=request.tenant, dry_run=True, actor=request.user, request=request)
    rows = [(KIND_LABELS[kind], counts[kind]) for kind in KINDS]
    if request.headers.get("HX-Request"):
        return render(request, "lifecycle/_retention_preview.html", {"rows": rows})
    return _page(request, _form(), preview=rows)  # without JavaScript: the whole page
