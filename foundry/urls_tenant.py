"""URLs served on a tenant's host."""

from django.urls import include, path

urlpatterns = [
    path("api/", include("foundry.urls_api")),
    path("", include("apps.console.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.tokens.urls")),
]

handler404 = "foundry.errors.not_found"
handler500 = "foundry.errors.server_error"
