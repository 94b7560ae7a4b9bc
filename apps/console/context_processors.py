from django.http import HttpRequest
from django.urls import reverse

from apps.console.navigation import OPERATOR_NAV, TENANT_NAV


def console(request: HttpRequest) -> dict:
    """The tenant being served (None on the operator host) and the navigation the user may see."""
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    items = []
    if user is not None and user.is_authenticated:
        for item in TENANT_NAV if tenant is not None else OPERATOR_NAV:
            if tenant is not None and item.permission and not user.has_permission(item.permission):
                continue
            url = reverse(item.url_name)
            active = request.path == url or (url != "/" and request.path.startswith(url))
            items.append({"label": item.label, "url": url, "active": active})
    return {"tenant": tenant, "nav_items": items}
