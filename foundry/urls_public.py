"""URLs served on the bare base domain: the platform operator console."""

from django.urls import include, path

from apps.accounts.urls import auth_urlpatterns

urlpatterns = [
    path("", include("apps.tenants.urls")),
    path("", include((auth_urlpatterns, "accounts"))),
]

handler404 = "foundry.errors.not_found"
handler500 = "foundry.errors.server_error"
