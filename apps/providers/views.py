"""Console page for model providers (settings.manage): list, set or replace a key, delete."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.providers.encryption import encryption_available
from apps.providers.models import ProviderCredential, ProviderName
from apps.providers.services import credential_delete, credential_set
from foundry.errors import ServiceError
from foundry.forms import form_errors_add

_OPENAI_ONLY = ("organization", "api_version", "deployment")


class CredentialForm(forms.Form):
    api_key = forms.CharField(
        label="API key",
        max_length=1000,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    base_url = forms.CharField(label="Base URL", max_length=500, required=False)
    organization = forms.CharField(max_length=200, required=False)
    api_version = forms.CharField(label="API version (Azure)", max_length=50, required=False)
    deployment = forms.CharField(label="Deployment (Azure)", max_length=200, required=False)

    def __init__(self, *args, provider: str, credential: ProviderCredential | None = None, **kwargs):
        if credential is not None and not args and "data" not in kwargs:
            kwargs["initial"] = {name: getattr(credential, name) for name in ("base_url", *_OPENAI_ONLY)}
        super().__init__(*args, prefix=provider, **kwargs)
        self.provider = provider
        if provider != ProviderName.OPENAI:
            for name in _OPENAI_ONLY:
                del self.fields[name]
        placeholder = "https://api.openai.com/v1" if provider == ProviderName.OPENAI else "https://api.anthropic.com"
        self.fields["base_url"].widget.attrs["placeholder"] = placeholder
        if credential is not None:
            self.fields["api_key"].help_text = "Leave empty to keep the stored key."


def _page(request: HttpRequest, bound: CredentialForm | None = None, error: ServiceError | None = None, status=200):
    credentials = {c.provider: c for c in ProviderCredential.objects.all()}
    rows = []
    for value, label in ProviderName.choices:
        credential = credentials.get(value)
        form = bound if bound is not None and bound.provider == value else None
        rows.append(
            {
                "name": value,
                "label": label,
                "credential": credential,
                "form": form or CredentialForm(provider=value, credential=credential),
            }
        )
    context = {"rows": rows, "error": error, "encryption_available": encryption_available()}
    return render(request, "providers/provider_list.html", context, status=status)


def _provider(provider: str) -> str:
    if provider not in ProviderName.values:
        raise Http404("No such provider.")
    return provider


@require_permission(Permission.SETTINGS_MANAGE)
@require_safe
def provider_list(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_permission(Permission.SETTINGS_MANAGE)
@require_POST
def provider_set(request: HttpRequest, provider: str) -> HttpResponse:
    provider = _provider(provider)
    credential = ProviderCredential.objects.filter(provider=provider).first()
    form = CredentialForm(request.POST, provider=provider, credential=credential)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    try:
        credential_set(
            actor=request.user,
            provider=provider,
            api_key=data["api_key"] or None,
            base_url=data["base_url"],
            organization=data.get("organization", ""),
            api_version=data.get("api_version", ""),
            deployment=data.get("deployment", ""),
            request=request,
        )
    except ValidationError as e:
        form_errors_add(form, e)
        return _page(request, form, status=400)
    except ServiceError as e:
        return _page(request, form, error=e, status=e.status)
    messages.success(request, f"{ProviderName(provider).label}: credentials saved.")
    return redirect("providers:provider_list")


@require_permission(Permission.SETTINGS_MANAGE)
@require_http_methods(["GET", "HEAD", "POST"])
def provider_delete(request: HttpRequest, provider: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    provider = _provider(provider)
    credential = ProviderCredential.objects.filter(provider=provider).first()
    if credential is None:
        raise Http404("No credentials for this provider.")
    if request.method == "POST":
        credential_delete(actor=request.user, provider=provider, request=request)
        messages.success(request, f"{ProviderName(provider).label}: credentials deleted.")
        return redirect("providers:provider_list")
    return render(request, "providers/provider_delete.html", {"credential": credential})
