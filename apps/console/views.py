from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.accounts.services import member_count
from apps.audit.selectors import audit_recent


@require_permission(Permission.DASHBOARD_VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "member_count": member_count(),
        "recent_events": audit_recent(limit=10),
    }
    return render(request, "console/dashboard.html", context)
