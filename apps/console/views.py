from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.accounts.services import member_count
from apps.audit.selectors import audit_recent


@require_permission(Permission.DASHBOARD_VIEW)
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    # The trail's latest events, for those who may read the trail (audit.view) only.
    sees_audit = request.user.has_permission(Permission.AUDIT_VIEW)
    context = {
        "member_count": member_count(),
        "sees_audit": sees_audit,
        "recent_events": audit_recent(limit=10) if sees_audit else [],
    }
    return render(request, "console/dashboard.html", context)
