"""The endpoint bench/tenant_routing.py measures: one query, answered as JSON."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from apps.accounts.models import User


def one_query(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"users": User.objects.count()})


urlpatterns = [
    path("bench/one-query", one_query),
    path("", include("foundry.urls_tenant")),
]
