"""Console page for single sign-on (settings.manage): see, set or replace, disable; the platform JWKS."""

import re

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods, require_safe

from apps.accounts.access import denied_response, require_permission
from apps.accounts.permissions import Permission
from apps.identity.models import DEFAULT_SCOPES, SsoConfiguration
from apps.identity.service_tokens import platform_jwks
from apps.identity.services import role_map_parse, sso_configure, sso_disable
from apps.providers.encryption import encryption_available
from foundry.errors import ServiceError
from foundry.forms import TextareaField, form_errors_add


class SsoForm(forms.Form):
    issuer = forms.CharField(label="Issuer URL", max_length=500)
    client_id = forms.CharField(label="Client id", max_length=255)
    client_secret = forms.CharField(
        label="Client secret",
        max_length=1000,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    scopes = forms.CharField(max_length=500, required=False, initial=DEFAULT_SCOPES)
    allowed_domains = TextareaField(
        label="Allowed email domains",
        max_length=20_000,  # MAX_DOMAINS names of up to 253 characters, and room for blank lines
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line; empty: any domain.",
    )
    roles_claim = forms.CharField(label="Roles claim", max_length=200, required=False, help_text="e.g. groups")
    role_map = TextareaField(
        label="Role mapping",
        max_length=30_000,  # MAX_ROLE_MAP lines of a 200-character value and a role
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One VALUE=ROLE per line, e.g. foundry-admins=admin (owner cannot be mapped).",
    )
    audience = forms.CharField(
        label="API token audience",
        max_length=500,
        required=False,
        help_text="The aud of access tokens accepted on the API and MCP; empty: the client id.",
    )
    jit_enabled = forms.BooleanField(label="Create users on first sign-in", required=False, initial=True)
    sso_required = forms.BooleanField(label="SSO required (no passwords)", required=False)
    break_glass_email = forms.CharField(
        label="Break-glass owner", max_length=254, required=False, help_text="The owner who may still use a password."
    )

    def __init__(self, *args, config: SsoConfiguration | None = None, **kwargs):
        if config is not None and not args and "data" not in kwargs:
            kwargs["initial"] = {
                "issuer": config.issuer,
                "client_id": config.client_id,
                "scopes": config.scopes,
                "allowed_domains": "\n".join(config.allowed_domains),
                "roles_claim": config.roles_claim,
                "role_map": "\n".join(f"{value}={role}" for value, role in config.role_map.items()),
                "audience": config.audience,
                "jit_enabled": config.jit_enabled,
                "sso_required": config.sso_required,
                "break_glass_email": config.break_glass_email,
            }
        super().__init__(*args, **kwargs)
        if config is not None:
            self.fields["client_secret"].help_text = "Leave empty to keep the stored secret."

    def clean_allowed_domains(self) -> list[str]:
        return self.cleaned_data["allowed_domains"].replace(",", " ").split()

    def clean_role_map(self) -> dict[str, str]:
        return role_map_parse(self.cleaned_data["role_map"].splitlines())


def _page(request: HttpRequest, form: SsoForm | None = None, error: ServiceError | None = None, status: int = 200):
    config = SsoConfiguration.objects.filter(pk=1).first()
    context = {
        "config": config,
        "form": form or SsoForm(config=config),
        "error": error,
        "encryption_available": encryption_available(),
        "can_change": request.user.has_permission(Permission.OWNERS_MANAGE),
    }
    return render(request, "identity/sso_settings.html", context, status=status)


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def sso_settings(request: HttpRequest) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        return _page(request)
    if not request.user.has_permission(Permission.OWNERS_MANAGE):
        return denied_response(request, "Only owners change single sign-on.")
    form = SsoForm(request.POST, config=SsoConfiguration.objects.filter(pk=1).first())
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    try:
        sso_configure(actor=request.user, **{**data, "client_secret": data["client_secret"] or None}, request=request)
    except ValidationError as e:
        form_errors_add(form, e)
        return _page(request, form, status=400)
    except ServiceError as e:
        return _page(request, form, error=e, status=e.status)
    messages.success(request, "Single sign-on settings saved.")
    return redirect("identity:sso_settings")


# settings.manage shows the page; a POST changes the provider: owners only (services._check_actor).
sso_settings.post_permission = Permission.OWNERS_MANAGE


@require_permission(Permission.OWNERS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def sso_disable_confirm(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation; POST disables."""
    config = SsoConfiguration.objects.filter(pk=1).first()
    if config is None:
        raise Http404("Single sign-on is not configured.")
    if request.method == "POST":
        try:
            sso_disable(actor=request.user, request=request)
        except ServiceError as e:  # owner_password_required
            return _page(request, error=e, status=e.status)
        messages.success(request, "Single sign-on disabled.")
        return redirect("identity:sso_settings")
    return render(request, "identity/sso_disable.html", {"config": config})


@require_safe
@cache_control(public=True, max_age=300)
def platform_jwks_view(request: HttpRequest) -> JsonResponse:
    """The platform's service-token verification keys (every host serves the same set)."""
    return JsonResponse(platform_jwks())


_HEADER_NAMES = re.compile(r"^[A-Za-z0-9-]+(?:\s*,\s*[A-Za-z0-9-]+){0,20}\Z")


@require_http_methods(["GET", "HEAD", "OPTIONS"])
def protected_resource_metadata(request: HttpRequest) -> HttpResponse:
    """OAuth 2.0 Protected Resource Metadata (RFC 9728) of this workspace's MCP endpoint: where a
    client gets a token: the workspace's own identity provider (404 without one). Public, and
    readable from any origin (no credentials go with it): a browser client the /mcp 401 sends
    here reads it cross-origin, after a preflight when it sends MCP-Protocol-Version."""
    from apps.identity.oidc import sso_config

    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = "GET, HEAD"
        asked = request.headers.get("Access-Control-Request-Headers", "")
        if _HEADER_NAMES.match(asked):
            response["Access-Control-Allow-Headers"] = asked
        response["Access-Control-Max-Age"] = "600"
        return response
    config = sso_config()
    if config is None:  # no authorization server to name: MCP asks the document for at least one
        message = "This workspace has no single sign-on: send an API token (Authorization: Bearer)."
        response = JsonResponse({"error": {"code": "sso_not_configured", "message": message}}, status=404)
        response["Access-Control-Allow-Origin"] = "*"
        return response
    origin = f"{request.scheme}://{request.get_host()}"
    body = {
        "resource": f"{origin}/mcp",
        "resource_name": f"Agent Foundry: {request.tenant.name}",
        "authorization_servers": [config.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": config.scopes.split(),
        "resource_documentation": f"{origin}/api/docs/",
    }
    response = JsonResponse(body)
    response["Access-Control-Allow-Origin"] = "*"
    return response
