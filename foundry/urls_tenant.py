"""URLs served on a tenant's host."""

from django.urls import include, path

urlpatterns = [
    path("", include("apps.console.urls")),
    path("", include("apps.accounts.urls")),
]
