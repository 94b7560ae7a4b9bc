"""URLs served on a tenant's host."""

from django.urls import include, path

from apps.audit.views import audit_keys
from apps.catalog import git_http
from apps.identity.views import platform_jwks_view, protected_resource_metadata

urlpatterns = [
    path("api/", include("foundry.urls_api")),
    path(".well-known/foundry-audit-keys.json", audit_keys, name="audit_keys"),
    path(".well-known/jwks.json", platform_jwks_view, name="platform_jwks"),
    path(".well-known/oauth-protected-resource", protected_resource_metadata, name="protected_resource"),
    path(".well-known/oauth-protected-resource/mcp", protected_resource_metadata, name="protected_resource_mcp"),
    path("git/foundry.git/info/refs", git_http.info_refs, name="git_info_refs"),
    path("git/foundry.git/git-upload-pack", git_http.upload_pack, name="git_upload_pack"),
    path("git/foundry.git/git-receive-pack", git_http.receive_pack, name="git_receive_pack"),
    path("", include("apps.console.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.tokens.urls")),
    path("", include("apps.providers.urls")),
    path("", include("apps.identity.urls")),
    path("", include("apps.catalog.urls")),
    path("", include("apps.runs.urls")),
    path("", include("apps.billing.urls_console")),
    path("", include("apps.audit.urls")),
    path("", include("apps.audit.urls_sinks")),
    path("", include("apps.lifecycle.urls_console")),
]

handler400 = "foundry.errors.bad_request"
handler403 = "foundry.errors.permission_denied"
handler404 = "foundry.errors.not_found"
handler500 = "foundry.errors.server_error"
