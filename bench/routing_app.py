"""The endpoint bench/tenant_routing.py measures: one query, answered as JSON.

The URLconf serves it at /bench/one-query next to every real tenant URL.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from apps.accounts.models import User


def one_query(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"users": User.objects.count()})


urlpatterns = [
    path("bench/one-query", one_query),
    path("", include("foundry.urls_tenant")),
]

handler404 = "foundry.errors.not_found"
handler500 = "foundry.errors.server_error"
