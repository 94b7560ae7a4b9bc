"""A workspace's model provider credentials: set, delete, rotate, and the settings a run uses.

Everything here acts on the schema the connection is on: a tenant's own table.
"""

import hmac
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.services import audit_record
from apps.providers.encryption import (
    SecretUndecryptable,
    secret_decrypt,
    secret_encrypt,
    secret_is_current,
    secret_place,
    secret_rotate,
)
from apps.providers.models import ProviderCredential, ProviderName
from foundry.db.locks import xact_lock
from foundry.errors import ServiceError
from foundry.runtime.network import NetworkPolicy, address_refusal, literal_address
from foundry.runtime.provider_http import MAX_RESPONSE_BYTES, URL_NAME
from foundry.runtime.providers import ProviderSettings

MAX_KEY_CHARS = 1000
LAST4_MIN_KEY_CHARS = 16  # shorter keys show no characters at all
_KEY = re.compile(r"^[\x21-\x7e]+\Z")  # printable ASCII, no spaces: it travels in an HTTP header
_OPENAI_ONLY = ("organization", "api_version", "deployment")


def _check_actor(actor: object) -> None:
    if hasattr(actor, "has_permission") and not actor.has_permission(Permission.SETTINGS_MANAGE):
        raise PermissionDenied("Your role does not allow managing model providers.")


def credential_get(provider: str) -> ProviderCredential:
    """The workspace's credential for `provider`: ServiceError `provider_unknown` (404) for a
    provider that takes none, `provider_not_configured` (404) when none is stored."""
    credential = ProviderCredential.objects.filter(provider=_provider(provider)).first()
    if credential is None:
        raise ServiceError("provider_not_configured", f"No {provider} credentials are configured.", status=404)
    return credential


def _provider(provider: str) -> str:
    if provider not in ProviderName.values:
        raise ServiceError(
            "provider_unknown",
            f"Credentials are kept for {', '.join(ProviderName.values)} only (scripted needs none).",
            status=404,
        )
    return provider


# --- validation -----------------------------------------------------------------------------


def _invalid(code: str, message: str) -> ValidationError:
    return ValidationError(message, code=code)


def base_url_problem(url: str) -> ValidationError | None:
    """Why `url` cannot be a provider's base URL, or None.

    Literal IP addresses are checked here against FOUNDRY_PROVIDER_ALLOWED_NETWORKS; names are
    checked after DNS resolution on every call (foundry/runtime/provider_http.py)."""
    if len(url) > 500 or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return _invalid("base_url_invalid", "A URL of at most 500 characters, without spaces.")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return _invalid("base_url_invalid", "This is not a valid URL.")
    if parts.scheme not in ("http", "https") or not host:
        return _invalid("base_url_invalid", "Use an http(s) URL such as https://api.openai.com/v1.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return _invalid("base_url_invalid", "Put the key in the API key field, not in the URL.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return _invalid("base_url_invalid", "A base URL has no query or fragment (Azure: set the API version).")
    try:  # what the providers' HTTP client will make of it (an IDNA name it cannot encode: none)
        client_host = httpx2.URL(url).host
    except httpx2.InvalidURL:
        return _invalid("base_url_invalid", "This is not a valid URL (its host name cannot be encoded).")
    # The client's reading of the host, which the call will connect to: `169。254。169。254` (ideographic
    # or fullwidth dots, which IDNA maps to ".") is the literal 169.254.169.254 to it.
    ip = literal_address(client_host) or literal_address(host)
    if ip is None:
        return None  # a name: checked after resolution, at every call
    refused = address_refusal(ip, provider_network_policy())
    if refused:
        return _invalid(
            "base_url_refused",
            f"{ip} is a {refused} address; providers reach it only when an operator allows its network "
            "for this workspace.",
        )
    if parts.scheme == "http" and address_refusal(ip, NetworkPolicy()) is None:
        return _invalid("base_url_insecure", "Use https: the API key would cross the internet in clear.")
    return None


def _validate(provider: str, fields: dict, api_key: str | None, *, creating: bool) -> None:
    errors: dict[str, ValidationError] = {}
    if api_key is None:
        if creating:
            errors["api_key"] = _invalid("api_key_required", "An API key is required.")
    elif not api_key or len(api_key) > MAX_KEY_CHARS or not _KEY.match(api_key):
        errors["api_key"] = _invalid("api_key_invalid", f"An API key is 1 to {MAX_KEY_CHARS} printable characters.")
    if fields["base_url"] and (problem := base_url_problem(fields["base_url"])):
        errors["base_url"] = problem
    if provider != ProviderName.OPENAI:
        for name in _OPENAI_ONLY:
            if fields[name]:
                errors[name] = _invalid("field_not_supported", f"Only the openai provider takes {name}.")
    else:
        organization = fields["organization"]
        if len(organization) > 200 or not organization.isascii() or not organization.isprintable():
            # It travels in an HTTP header (OpenAI-Organization): ASCII only.
            errors["organization"] = _invalid("organization_invalid", "At most 200 printable ASCII characters.")
        for name, limit in (("api_version", 50), ("deployment", 200)):
            value = fields[name]
            if value and (len(value) > limit or not URL_NAME.match(value)):
                errors[name] = _invalid(f"{name}_invalid", f"At most {limit} letters, digits, '.', '_' or '-'.")
        if fields["deployment"] and not fields["api_version"] and "deployment" not in errors:
            errors["deployment"] = _invalid(
                "deployment_requires_api_version", "A deployment is Azure OpenAI's: set the API version too."
            )
        if fields["api_version"] and not fields["base_url"] and "base_url" not in errors:
            errors["base_url"] = _invalid(
                "base_url_required", "Azure OpenAI needs its resource endpoint, e.g. https://NAME.openai.azure.com."
            )
    if errors:
        raise ValidationError(errors)


def _last4(api_key: str) -> str:
    return api_key[-4:] if len(api_key) >= LAST4_MIN_KEY_CHARS else ""


# --- writes ---------------------------------------------------------------------------------


@transaction.atomic
def credential_set(
    *,
    actor: object,
    provider: str,
    api_key: str | None = None,
    base_url: str = "",
    organization: str = "",
    api_version: str = "",
    deployment: str = "",
    request: HttpRequest | None = None,
) -> ProviderCredential:
    """Create or replace the workspace's credential for `provider`; without `api_key`, keep the
    stored one. The credential returned says whether this call created it (`just_created`)."""
    _check_actor(actor)
    provider = _provider(provider)
    fields = {
        "base_url": (base_url or "").strip(),
        "organization": (organization or "").strip(),
        "api_version": (api_version or "").strip(),
        "deployment": (deployment or "").strip(),
    }
    api_key = api_key.strip() if isinstance(api_key, str) else None
    # Even before it exists: two first saves (a retried PUT, a double-clicked form) take turns.
    xact_lock(f"providers.credential:{connection.schema_name}:{provider}")
    credential = ProviderCredential.objects.select_for_update().filter(provider=provider).first()
    actor = allowed_now(actor, Permission.SETTINGS_MANAGE)  # as they stand now, not as the request began
    _validate(provider, fields, api_key, creating=credential is None)
    if credential is not None and api_key is None:
        moved = [n for n in ("base_url", "api_version", "deployment") if getattr(credential, n) != fields[n]]
        if moved:
            # The stored key must never follow a changed endpoint that its owner did not confirm.
            # `details` per field, as when no key is stored: one shape for the one code.
            message = f"Changing {', '.join(moved)} sends the key somewhere new: give the API key again."
            details = {"api_key": [{"code": "api_key_required", "message": message}]}
            raise ServiceError("api_key_required", message, details=details)
    if credential is not None and _unchanged(credential, fields, api_key):
        credential.just_created = False
        return credential  # a retried PUT: nothing changes, nothing is recorded, no run is told
    now, by = timezone.now(), str(actor)[:255]
    created = credential is None
    if created:
        credential = ProviderCredential(provider=provider, created_by=by)
    for name, value in fields.items():
        setattr(credential, name, value)
    if api_key is not None:
        credential.api_key_encrypted = secret_encrypt(api_key, place=_key_place(credential))
        credential.api_key_last4 = _last4(api_key)
    credential.updated_by, credential.updated_at = by, now
    credential.save()
    _runs_signal(provider)
    audit_record(
        action="provider.credential.set",
        actor=actor,
        target=credential,
        data={"provider": provider, "created": created, "key_replaced": api_key is not None, **fields},
        request=request,
    )
    credential.just_created = created
    return credential


@transaction.atomic
def credential_delete(*, actor: object, provider: str, request: HttpRequest | None = None) -> None:
    """Forget the workspace's credential for `provider` (ServiceError `provider_not_configured` if none)."""
    _check_actor(actor)
    provider = _provider(provider)
    credential = ProviderCredential.objects.select_for_update().filter(provider=provider).first()
    actor = allowed_now(actor, Permission.SETTINGS_MANAGE)  # as they stand now, not as the request began
    if credential is None:
        raise ServiceError("provider_not_configured", f"No {provider} credentials are configured.", status=404)
    target = (credential._meta.label_lower, credential.pk)
    credential.delete()
    _runs_signal(provider)
    audit_record(
        action="provider.credential.delete", actor=actor, target=target, data={"provider": provider}, request=request
    )


def _unchanged(credential: ProviderCredential, fields: dict[str, str], api_key: str | None) -> bool:
    """Whether saving `fields` (and `api_key`, if given) changes nothing of `credential`."""
    if any(getattr(credential, name) != value for name, value in fields.items()):
        return False
    if api_key is None:
        return True
    try:
        stored = secret_decrypt(credential.api_key_encrypted, place=_key_place(credential))
    except Exception:  # noqa: BLE001 - any key it cannot open (a rotation not finished): a change
        return False
    return bool(credential.api_key_encrypted) and hmac.compare_digest(stored.encode(), api_key.encode())


def _runs_signal(provider: str) -> None:
    """Tell the workers running this workspace's runs on `provider` to look at its credential
    before their next step: none makes another model call with a key deleted or replaced
    (engine.py `Attempt._credential_check`; every few seconds otherwise). As `run_cancel` does,
    before the change commits: a signalled worker reads again before every step from then on."""
    from apps.runs.locks import cancel_signal
    from apps.runs.models import Run

    running = Run.objects.filter(status=Run.Status.RUNNING, provider=provider).values_list("pk", flat=True)
    if running := [str(pk) for pk in running]:
        cancel_signal(connection.schema_name, running)


@dataclass
class RotationCounts:
    rotated: int = 0
    current: int = 0
    undecryptable: list[str] | None = None


def _key_place(credential: ProviderCredential) -> str:
    """The credential's key opens only in its row: this workspace's credential of this provider."""
    return secret_place(ProviderCredential._meta.db_table, credential.provider)


@transaction.atomic
def credentials_rotate() -> RotationCounts:
    """Re-encrypt this schema's credentials under the first FOUNDRY_ENCRYPTION_KEYS key (idempotent)."""
    counts = RotationCounts(undecryptable=[])
    # A blank key (a workspace imported from an archive, which never carries secrets: its admins
    # give the key again) has nothing to re-encrypt, as blank SSO and sink secrets have not.
    credentials = ProviderCredential.objects.select_for_update().exclude(api_key_encrypted="").order_by("provider")
    for credential in credentials:
        if secret_is_current(credential.api_key_encrypted, place=_key_place(credential)):
            counts.current += 1
            continue
        try:
            credential.api_key_encrypted = secret_rotate(credential.api_key_encrypted, place=_key_place(credential))
        except SecretUndecryptable:
            counts.undecryptable.append(credential.provider)
            continue
        credential.save(update_fields=["api_key_encrypted"])
        counts.rotated += 1
    return counts


# --- what a run uses ------------------------------------------------------------------------


def provider_network_policy(networks: list[str] | None = None) -> NetworkPolicy:
    """The addresses this workspace's providers may reach: public ones, the networks operators
    allowed this tenant (`manage.py tenant_http_networks`: `networks` as a run's claim read them,
    else as they are now), and FOUNDRY_PROVIDER_ALLOWED_NETWORKS (every tenant: for a model server
    the platform itself offers)."""
    from apps.tenants.models import Tenant

    allowed = list(settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS)
    if networks is not None:
        allowed += [ipaddress.ip_network(network) for network in networks]
    elif (tenant := Tenant.objects.filter(schema_name=connection.schema_name).first()) is not None:
        allowed += tenant.http_networks()
    return NetworkPolicy(allowed_networks=tuple(allowed), max_response_bytes=MAX_RESPONSE_BYTES)


def provider_settings_for(manifest: dict, *, script=None, networks: list[str] | None = None) -> ProviderSettings:
    """The ProviderSettings of `manifest`'s model, with this workspace's decrypted credentials.

    Call it inside the tenant's schema. `scripted` needs no credentials; `openai` and
    `anthropic` without one raise ServiceError `provider_not_configured` (409)."""
    if connection.schema_name == get_public_schema_name():
        raise RuntimeError("provider_settings_for runs inside a tenant's schema.")
    model = manifest["spec"]["model"]
    name = model["provider"]
    common = {"model": model["name"], "parameters": dict(model.get("parameters") or {})}
    if name == "scripted":
        return ProviderSettings(**common, script=list(script or ()))
    if name not in ProviderName.values:
        raise ServiceError("provider_unknown", f"Unknown provider {name!r}.")
    credential = ProviderCredential.objects.filter(provider=name).first()
    if credential is None:
        raise ServiceError(
            "provider_not_configured",
            f"This agent uses the {name} provider, and no {name} credentials are configured for this "
            "workspace; an admin adds them in Settings → Model providers.",
            status=409,
        )
    credentials = {
        # Blank once an import left the key behind: the provider says `provider_credentials_missing`.
        "api_key": secret_decrypt(credential.api_key_encrypted, place=_key_place(credential))
        if credential.api_key_encrypted
        else "",
        "base_url": credential.base_url,
        "organization": credential.organization,
        "api_version": credential.api_version,
        "deployment": credential.deployment,
        "timeout_seconds": settings.FOUNDRY_PROVIDER_TIMEOUT_SECONDS,
        "max_retries": settings.FOUNDRY_PROVIDER_MAX_RETRIES,
    }
    return ProviderSettings(**common, credentials=credentials, network=provider_network_policy(networks))
