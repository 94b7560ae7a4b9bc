"""A workspace's single sign-on configuration: validate, discover the issuer, store, disable.

Everything here acts on the schema the connection is on: the tenant's own table. The login flow
that uses it is apps/identity/oidc.py; bearer tokens are checked by apps/identity/bearer.py.
"""

import json
import re
import time
from urllib.parse import urlsplit

import idna
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role
from apps.accounts.services import (
    SSO_RULES_LOCK,
    allowed_now,
    domain_spelling,
    email_clean,
    owners_hold,
    owners_signing_in,
)
from apps.accounts.sessions import sessions_refused_end
from apps.audit.services import audit_record
from apps.identity.jwks import jwks_forget
from apps.identity.models import DEFAULT_SCOPES, SsoConfiguration
from apps.providers.encryption import (
    SecretUndecryptable,
    secret_encrypt,
    secret_is_current,
    secret_place,
    secret_rotate,
)
from foundry.db.locks import xact_lock
from foundry.errors import ServiceError
from foundry.manifests.validation import url_host
from foundry.runtime.network import FetchError, NetworkPolicy, address_refusal, addresses_resolved, fetch

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT_SECONDS = 5.0  # a module constant so tests can lower it
DISCOVERY_MAX_BYTES = 1024 * 1024
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
OPTIONAL_ENDPOINTS = ("userinfo_endpoint", "end_session_endpoint")
MAX_SECRET_CHARS = 1000
MAX_DOMAINS = 50
MAX_ROLE_MAP = 100
_PRINTABLE = re.compile(r"^[\x21-\x7e]+\Z")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+\Z")  # RFC 6749 scope-token


def _domain_typed(typed: str) -> str:
    return typed.strip().lower().rstrip(".")


def _domain_spelled(domain: str) -> str:
    """An allowed domain (as `_domain_typed` gives it) as members' addresses spell it (accounts'
    `domain_spelling`: U-labels, so `xn--bcher-kva.test` and `bücher.test` are one domain); as
    typed when IDNA refuses it or reads it as another name (a zero-width space, a soft hyphen,
    fullwidth letters), which no member's address holds: refused by `_validate`."""
    if len(domain) > 253:  # no domain name: not worth IDNA's time
        return domain
    return domain_spelling(domain) or domain


def _domains(typed: list[str] | tuple[str, ...]) -> list[str]:
    """The allowed domains, spelled, each once; past MAX_DOMAINS distinct lines, as typed (to be
    refused by `_validate` without spelling each of as many as a request holds)."""
    domains = {_domain_typed(d) for d in typed if d.strip()}
    if len(domains) > MAX_DOMAINS:
        return sorted(domains)
    return sorted({_domain_spelled(d) for d in domains})


def _ascii(domain: str) -> str:
    """The domain's ASCII form (A-labels), which `_DOMAIN` checks; "" when it has none."""
    try:
        return domain if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return ""


_DOMAIN = re.compile(r"^(?=.{1,253}\Z)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
_CLAIM = re.compile(r"^[A-Za-z0-9_.:/#-]{1,200}\Z")


def _invalid(code: str, message: str) -> ValidationError:
    return ValidationError(message, code=code)


def _check_actor(actor: object) -> None:
    """Configuring or disabling single sign-on is for owners: the provider it names signs anyone
    in, and links a member who has no identity yet by a verified email — owners included — so an
    admin choosing it could sign in as an owner (docs/roles.md: only owners grant the owner role)."""
    if hasattr(actor, "has_permission") and not actor.has_permission(Permission.OWNERS_MANAGE):
        raise PermissionDenied("Only owners configure or disable single sign-on.")


def sso_network_policy() -> NetworkPolicy:
    """Where discovery may go: public addresses, plus the networks operators allowed this tenant
    (`manage.py tenant_http_networks`) and FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS (every tenant)."""
    from apps.tenants.models import Tenant

    networks = list(settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS)
    tenant = Tenant.objects.filter(schema_name=connection.schema_name).first()
    if tenant is not None:
        networks += tenant.http_networks()
    return NetworkPolicy(
        allowed_networks=tuple(networks),
        max_response_bytes=DISCOVERY_MAX_BYTES,
        max_redirects=0,
        plain_http_public=False,  # the client secret, codes and keys: over https across the internet
    )


# --- input ----------------------------------------------------------------------------------


def role_map_parse(lines: list[str]) -> dict[str, str]:
    """`VALUE=ROLE` lines (console textarea, command line) as a mapping; blank lines are skipped."""
    mapping: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        value, sep, role = line.rpartition("=")
        if not sep or not value.strip() or not role.strip():
            raise _invalid("role_map_invalid", f"{line[:100]!r} is not VALUE=ROLE.")
        mapping[value.strip()] = role.strip().lower()
    return mapping


def _url_problem(url: str, name: str) -> ValidationError | None:
    if not url or len(url) > 500 or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return _invalid(f"{name}_invalid", "A URL of at most 500 characters, without spaces.")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return _invalid(f"{name}_invalid", "This is not a valid URL.")
    if parts.scheme not in ("http", "https") or not host:
        return _invalid(f"{name}_invalid", "Use an https URL such as https://login.example.com.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return _invalid(f"{name}_invalid", "A URL here carries no user name or password.")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return _invalid(f"{name}_invalid", "An issuer URL has no query or fragment.")
    return None


def _plain_http_refusal(url: str, policy: NetworkPolicy, deadline: float) -> str | None:
    """Why `url` may not use plain http, or None. http is only for networks an operator allowed
    (a test IdP on loopback, an IdP inside the company network): never across the internet.
    Looked up by `deadline` (discovery's); every call to the IdP checks again the address it
    connects to (sso_network_policy)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    try:
        addresses = addresses_resolved(
            parts.hostname, parts.port or 80, deadline=deadline, timeout=DISCOVERY_TIMEOUT_SECONDS
        )
    except FetchError:
        return f"{parts.hostname!r} did not resolve within {DISCOVERY_TIMEOUT_SECONDS:g} s."
    except (OSError, UnicodeError, ValueError):
        return f"{parts.hostname!r} does not resolve."
    for ip in addresses:
        if address_refusal(ip, NetworkPolicy()) is None or address_refusal(ip, policy) is not None:
            return f"{url} uses plain http; use https (http only reaches networks an operator allowed)."
    return None


def _validate(fields: dict, client_secret: str | None, *, creating: bool) -> None:
    errors: dict[str, ValidationError] = {}
    if problem := _url_problem(fields["issuer"], "issuer"):
        errors["issuer"] = problem
    client_id = fields["client_id"]
    if not client_id or len(client_id) > 255 or not _PRINTABLE.match(client_id):
        errors["client_id"] = _invalid("client_id_invalid", "A client id is 1 to 255 printable characters.")
    audience = fields["audience"]
    if audience and (len(audience) > 500 or not _PRINTABLE.match(audience)):
        errors["audience"] = _invalid("audience_invalid", "An audience is at most 500 printable characters.")
    if client_secret is None:
        if creating:
            errors["client_secret"] = _invalid("client_secret_required", "A client secret is required.")
    elif not client_secret or len(client_secret) > MAX_SECRET_CHARS or not _PRINTABLE.match(client_secret):
        errors["client_secret"] = _invalid(
            "client_secret_invalid", f"A client secret is 1 to {MAX_SECRET_CHARS} printable characters."
        )
    scopes = fields["scopes"].split()
    if len(fields["scopes"]) > 500 or not all(_SCOPE.match(s) for s in scopes):
        errors["scopes"] = _invalid("scopes_invalid", "Scopes are words separated by spaces (at most 500 characters).")
    elif "openid" not in scopes:
        errors["scopes"] = _invalid("scopes_openid_required", "The scopes must include openid.")
    domains = fields["allowed_domains"]
    if len(domains) > MAX_DOMAINS or not all(_DOMAIN.match(_ascii(d)) and domain_spelling(d) == d for d in domains):
        errors["allowed_domains"] = _invalid(
            "allowed_domains_invalid", f"At most {MAX_DOMAINS} domain names such as example.com."
        )
    if problem := _role_map_problem(fields["roles_claim"], fields["role_map"]):
        errors[problem[0]] = problem[1]
    if problem := _break_glass_problem(fields["sso_required"], fields["break_glass_email"]):
        errors["break_glass_email"] = problem
    if errors:
        raise ValidationError(errors)


def _role_map_problem(claim: str, role_map: dict) -> tuple[str, ValidationError] | None:
    if claim and not _CLAIM.match(claim):
        return "roles_claim", _invalid("roles_claim_invalid", "A claim name of at most 200 letters, digits or ._:/#-.")
    if role_map and not claim:
        return "roles_claim", _invalid("roles_claim_required", "Name the claim that carries the roles (e.g. groups).")
    if len(role_map) > MAX_ROLE_MAP:
        return "role_map", _invalid("role_map_invalid", f"At most {MAX_ROLE_MAP} mappings.")
    for value, role in role_map.items():
        if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
            return "role_map", _invalid("role_map_invalid", "Claim values are 1 to 200 printable characters.")
        if role == Role.OWNER:
            return "role_map", _invalid(
                "role_map_owner_refused", f"{value!r}: owner is never granted by the identity provider."
            )
        if role not in Role.values:
            return "role_map", _invalid(
                "role_unknown",
                f"{value!r} maps to {str(role)[:50]!r}; roles are "
                f"{', '.join(r for r in Role.values if r != Role.OWNER)}.",
            )
    return None


def _address(text: str) -> str:
    """An address in the one spelling members are stored in (email_clean: the A-label domain or a
    decomposed accent is the same address); lowercased as typed when email_clean refuses it, for
    the break-glass check to name it."""
    if not text.strip():
        return ""
    try:
        return email_clean(text)
    except ValidationError:
        return text.strip().lower()


def _break_glass_problem(sso_required: bool, email: str) -> ValidationError | None:
    if not email:
        if sso_required:
            return _invalid(
                "break_glass_required", "SSO required: name an owner who may still sign in with a password."
            )
        return None
    try:
        validate_email(email)
    except ValidationError:
        return _invalid("break_glass_invalid", "This is not an email address.")
    owner = User.objects.filter(email=email, role=Role.OWNER, is_active=True).first()
    if owner is None:
        return _invalid("break_glass_not_owner", f"{email} is not an active owner of this workspace.")
    if not owner.has_usable_password():  # joined through single sign-on only, or not joined yet
        return _invalid("break_glass_no_password", f"{email} has no password to sign in with.")
    return None


def _password_owners() -> bool:
    """Whether an active owner can sign in with a password: the way in once SSO is gone or moved
    (an owner who joined through SSO only has none, and cannot be sent a link: invite_not_pending)."""
    owners = User.objects.filter(role=Role.OWNER, is_active=True)
    return owners.exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX).exists()


PASSWORD_OWNER_REQUIRED = (
    "No owner could sign in afterwards: every owner joined through single sign-on. Add an owner who "
    "signs in with a password (an owner link) first."
)


OWNER_SHUT_OUT = (
    "No owner could sign in afterwards: the allowed domains, or requiring single sign-on, would "
    "shut every owner who has joined out. Keep an owner's way in (their address's domain, or the "
    "break-glass owner's password)."
)
SIGN_IN_FIELDS = ("issuer", "allowed_domains", "sso_required", "break_glass_email")  # what sign_in_left reads


# --- discovery ------------------------------------------------------------------------------


def _discovery_failed(code: str, message: str) -> ValidationError:
    return ValidationError({"issuer": _invalid(code, message)})


def sso_discover(issuer: str) -> dict:
    """The issuer's discovery document, checked: the fields to store, or ValidationError on issuer."""
    policy = sso_network_policy()
    deadline = time.monotonic() + DISCOVERY_TIMEOUT_SECONDS  # the lookups' and the fetch's, in all
    if problem := _plain_http_refusal(issuer, policy, deadline):
        raise _discovery_failed("issuer_insecure", problem)
    url = issuer.rstrip("/") + DISCOVERY_PATH
    host = url_host(issuer)
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError("http_timeout", f"No answer within {DISCOVERY_TIMEOUT_SECONDS:g} s.")
        result = fetch("GET", url, hosts=[host], timeout=left, policy=policy)
    except FetchError as exc:
        if exc.code == "http_plain_refused":  # the name now resolves to a public address
            raise _discovery_failed("issuer_insecure", exc.message) from None
        if exc.code == "http_too_many_redirects":
            raise _discovery_failed(
                "discovery_redirect_refused", f"{url} redirects: use the issuer's own URL."
            ) from None
        raise _discovery_failed(f"discovery_{exc.code.removeprefix('http_')}", f"{url}: {exc.message}") from None
    if result.status != 200:
        raise _discovery_failed("discovery_failed", f"{url} answered HTTP {result.status}.")
    try:
        document = json.loads(result.body)
    except (ValueError, UnicodeError, RecursionError):  # RecursionError: nested past Python's stack
        document = None
    if not isinstance(document, dict):
        raise _discovery_failed("discovery_not_json", f"{url} did not answer a JSON object.")
    return _discovered(issuer, document, policy, deadline)


def _discovered(issuer: str, document: dict, policy: NetworkPolicy, deadline: float) -> dict:
    if document.get("issuer") != issuer:
        raise _discovery_failed(
            "issuer_mismatch",
            f"The discovery document names the issuer {str(document.get('issuer'))[:200]!r}, not {issuer!r} "
            "(they must match exactly, trailing slash included).",
        )
    found = {}
    for name in REQUIRED_ENDPOINTS + OPTIONAL_ENDPOINTS:
        value = document.get(name)
        if value is None and name in OPTIONAL_ENDPOINTS:
            found[name] = ""
            continue
        if not isinstance(value, str) or _url_problem(value, name):
            raise _discovery_failed("discovery_endpoint_missing", f"The discovery document has no valid {name}.")
        if problem := _plain_http_refusal(value, policy, deadline):
            raise _discovery_failed("discovery_endpoint_insecure", f"{name}: {problem}")
        found[name] = value
    offered = document.get("id_token_signing_alg_values_supported")
    offered = offered if isinstance(offered, list) else []
    algs = [alg for alg in offered if alg in ASYMMETRIC_ALGS]
    if not algs:
        raise _discovery_failed(
            "discovery_algs_refused",
            "The identity provider offers no asymmetric ID token signature (RS256, ES256, …); "
            f"it offers {', '.join(map(str, offered[:10])) or 'none'}.",
        )
    supported = document.get("authorization_response_iss_parameter_supported") is True
    return {**found, "signing_algs": algs, "iss_parameter_supported": supported}


# --- writes ---------------------------------------------------------------------------------


def _forget_recent() -> None:
    """This process's copy of the configuration, dropped now and again once the change commits:
    another thread of the process reading it meanwhile would keep the old one past the commit."""
    from apps.identity.oidc import sso_config_forget

    sso_config_forget()
    schema = connection.schema_name
    transaction.on_commit(lambda: sso_config_forget(schema))


def _config_locked() -> SsoConfiguration | None:
    """The configuration, with everything its checks read held to the transaction's end: the
    workspace's owners (the break-glass owner, the owners with a password), whom removing,
    demoting or erasing one also holds first (owners_hold), and the configuration itself, even
    before it exists (a lock on this workspace's name): two first saves take turns."""
    xact_lock(SSO_RULES_LOCK.format(schema=connection.schema_name))  # a sign-in shares it
    owners_hold()
    return SsoConfiguration.objects.select_for_update().filter(pk=1).first()


@transaction.atomic
def sso_configure(
    *,
    actor: object,
    issuer: str,
    client_id: str,
    client_secret: str | None = None,
    scopes: str = DEFAULT_SCOPES,
    allowed_domains: list[str] | tuple[str, ...] = (),
    roles_claim: str = "",
    role_map: dict[str, str] | None = None,
    audience: str = "",
    jit_enabled: bool = True,
    sso_required: bool = False,
    break_glass_email: str = "",
    request: HttpRequest | None = None,
) -> SsoConfiguration:
    """Create or replace the workspace's SSO configuration after checking the issuer's discovery
    document; without `client_secret`, keep the stored one (unless the issuer or client changes)."""
    _check_actor(actor)
    fields = {
        "issuer": (issuer or "").strip(),
        "client_id": (client_id or "").strip(),
        "scopes": " ".join(dict.fromkeys((scopes or DEFAULT_SCOPES).split())),
        "allowed_domains": _domains(allowed_domains),
        "roles_claim": (roles_claim or "").strip(),
        "role_map": dict(role_map or {}),
        "audience": (audience or "").strip(),
        "jit_enabled": bool(jit_enabled),
        "sso_required": bool(sso_required),
        "break_glass_email": _address(break_glass_email or ""),
    }
    client_secret = client_secret.strip() if isinstance(client_secret, str) else None
    _configure_check(SsoConfiguration.objects.filter(pk=1).first(), fields, client_secret)
    # The provider is asked before the configuration's lock is taken: every sign-in shares that
    # lock (member_signing_in), and a provider slow to answer would hold them all meanwhile. Then
    # the checks again, on the configuration as it stands under the lock.
    discovered = sso_discover(fields["issuer"])
    config = _config_locked()
    # The owner as they stand now (allowed_now): demoted, removed or revoked while the request ran, refused.
    actor = allowed_now(actor, Permission.OWNERS_MANAGE)
    _configure_check(config, fields, client_secret)
    now, by = timezone.now(), str(actor)[:255]
    created = config is None
    if created:
        config = SsoConfiguration(pk=1, created_by=by)
    for name, value in {**fields, **discovered}.items():
        setattr(config, name, value)
    if client_secret is not None:
        config.client_secret_encrypted = secret_encrypt(client_secret, place=sso_secret_place())
    previous_jwks = config.jwks_uri if not created else ""
    config.discovered_at = config.updated_at = now
    config.updated_by = by
    config.save()
    _forget_recent()
    # The provider's key set is fetched afresh at the next sign-in: saving the settings again is
    # how an admin stops trusting a key the provider withdrew (compromised) before the cache's hour.
    for jwks_uri in {previous_jwks, config.jwks_uri} - {""}:
        jwks_forget(jwks_uri)
    ended = sessions_refused_end(request)  # a session the new settings refuse is gone, not only refused
    revoked = _shut_out_tokens_revoke(actor, config, request)
    # The trail names people by pseudonymous id only (docs/lifecycle.md): the break-glass owner too.
    recorded = {name: value for name, value in fields.items() if name != "break_glass_email"}
    glass = User.objects.filter(email=fields["break_glass_email"]).values_list("pk", flat=True).first()
    audit_record(
        action="sso.configure",
        actor=actor,
        target=config,
        data={
            "created": created,
            "secret_replaced": client_secret is not None,
            "sessions_ended": ended,
            "tokens_revoked": revoked,
            **recorded,
            "break_glass": f"user:{glass}" if glass is not None else None,
            **discovered,
        },
        request=request,
    )
    return config


def _configure_check(config: SsoConfiguration | None, fields: dict, client_secret: str | None) -> None:
    """The settings `fields` may replace `config` (None: the first): ValidationError otherwise."""
    _validate(fields, client_secret, creating=config is None)
    if config is not None and client_secret is None:
        moved = [n for n in ("issuer", "client_id") if getattr(config, n) != fields[n]]
        if moved:
            # The stored secret must never follow a changed issuer or client its owner did not confirm.
            raise ValidationError(
                {"client_secret": _invalid("client_secret_required", f"Changing {', '.join(moved)}: give the secret.")}
            )
    if config is not None and config.issuer != fields["issuer"] and not _password_owners():
        # Members' identities are the old issuer's: at the new one they are identity_conflict.
        raise ValidationError({"issuer": _invalid("owner_password_required", PASSWORD_OWNER_REQUIRED)})
    # Nor may the allowed domains, or requiring SSO, leave no owner who has joined a way in: only
    # an owner may change these settings, and one who joined through SSO cannot be sent a link.
    # (A new workspace, whose owner has not joined yet, has none to shut out: their invitation
    # stays their way in.)
    settings_after = SsoConfiguration(**{name: fields[name] for name in SIGN_IN_FIELDS})
    if not owners_signing_in(settings_after) and owners_signing_in(config):
        field = "allowed_domains" if fields["allowed_domains"] else "sso_required"
        raise ValidationError({field: _invalid("owner_shut_out", OWNER_SHUT_OUT)})


def sign_in_left(member: User, config: SsoConfiguration | None) -> bool:
    """Whether `member` still has a way to sign in under `config` (None: no single sign-on): an
    invitation not yet accepted, a password the settings allow, or the provider — through an
    identity at its issuer, or linked by email at the first sign-in (a member with no identity
    yet) — with an address in the allowed domains."""
    if not member.is_active:
        return False
    if not member.has_joined:
        return True  # their invitation link still lets them in
    if member.has_usable_password() and not (
        config is not None and config.sso_required and member.email != config.break_glass_email
    ):
        return True
    if config is None:
        return False
    if config.allowed_domains and member.email.rpartition("@")[2] not in config.allowed_domains:
        return False
    identities = member.external_identities
    return identities.filter(issuer=config.issuer).exists() or not identities.exists()


def _shut_out_tokens_revoke(actor: object, config: SsoConfiguration | None, request: HttpRequest | None) -> int:
    """Revoke the API tokens of the members the new sign-in settings leave no way in (their
    sessions end with `sessions_refused_end`): a token never keeps a standing its member lost.
    How many were revoked; each is a `token.revoked` event with the reason `issuer_shut_out`."""
    from apps.tokens.models import ApiToken, RevokedReason
    from apps.tokens.services import token_revoke_issued_by

    live = ApiToken.objects.filter(revoked_at__isnull=True, issued_by__isnull=False).values("issued_by")
    revoked = 0
    for member in User.objects.filter(pk__in=live).order_by("pk"):
        if not sign_in_left(member, config):
            revoked += len(
                token_revoke_issued_by(
                    actor=actor, member=member, reason=RevokedReason.ISSUER_SHUT_OUT, request=request
                )
            )
    return revoked


@transaction.atomic
def sso_disable(*, actor: object, request: HttpRequest | None = None) -> None:
    """Forget the workspace's SSO configuration (ServiceError `sso_not_configured` if there is none)."""
    _check_actor(actor)
    config = _config_locked()
    actor = allowed_now(actor, Permission.OWNERS_MANAGE)  # the owner as they stand now
    if config is None:
        raise ServiceError("sso_not_configured", "Single sign-on is not configured.", status=404)
    if not _password_owners():
        raise ServiceError("owner_password_required", PASSWORD_OWNER_REQUIRED, status=409)
    target = (config._meta.label_lower, config.pk)
    issuer = config.issuer
    config.delete()
    _forget_recent()
    jwks_forget(config.jwks_uri)
    ended = sessions_refused_end(request)
    revoked = _shut_out_tokens_revoke(actor, None, request)
    data = {"issuer": issuer, "sessions_ended": ended, "tokens_revoked": revoked}
    audit_record(action="sso.disable", actor=actor, target=target, data=data, request=request)


def sso_secret_place() -> str:
    """The client secret opens only in this workspace's SSO settings (one row, pk 1)."""
    return secret_place(SsoConfiguration._meta.db_table, 1)


@transaction.atomic
def sso_secret_rotate() -> tuple[int, int, bool]:
    """Re-encrypt this schema's SSO client secret under the first FOUNDRY_ENCRYPTION_KEYS key.

    (rotated, already current, undecryptable) — at most one configuration per schema."""
    configuration = SsoConfiguration.objects.select_for_update().first()
    if configuration is None or not configuration.client_secret_encrypted:
        return 0, 0, False
    if secret_is_current(configuration.client_secret_encrypted, place=sso_secret_place()):
        return 0, 1, False
    try:
        configuration.client_secret_encrypted = secret_rotate(
            configuration.client_secret_encrypted, place=sso_secret_place()
        )
    except SecretUndecryptable:
        return 0, 0, True
    configuration.save(update_fields=["client_secret_encrypted"])
    return 1, 0, False
