"""URLs served on the bare base domain: the platform operator console."""

from django.urls import include, path

from apps.accounts.urls import auth_urlpatterns
from apps.audit.urls import platform_urlpatterns as audit_platform_urlpatterns
from apps.audit.views import audit_keys
from apps.identity.views import platform_jwks_view
from foundry.metrics import metrics_view

urlpatterns = [
    path("", include("apps.tenants.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("apps.billing.urls")),
    path("", include("apps.lifecycle.urls_platform")),
    path("", include((auth_urlpatterns, "accounts"))),
    path("", include((audit_platform_urlpatterns, "audit"))),
    path(".well-known/foundry-audit-keys.json", audit_keys, name="audit_keys"),
    path(".well-known/jwks.json", platform_jwks_view, name="platform_jwks"),
]

handler400 = "foundry.errors.bad_request"
handler403 = "foundry.errors.permission_denied"
handler404 = "foundry.errors.not_found"
handler500 = "foundry.errors.server_error"
