from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from apps.console.navigation import OPERATOR_NAV, TENANT_NAV


def console(request: HttpRequest) -> dict:
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    items = []
    if user is not None and user.is_authenticated:
        for item in TENANT_NAV if tenant is not None else OPERATOR_NAV:
            if tenant is not None and item.permission and not user.has_permission(item.permission):
                continue
            try:
                url = reverse(item.url_name)
            except NoReverseMatch:
                continue
            items.append(
                {
                    "label": item.label,
                    "url": url,
                    "active": request.path.startswith(url) and (url != "/" or request.path == "/"),
                }
            )
    return {"tenant": tenant, "nav_items": items, "is_operator_host": tenant is None}
