"""Single sign-on through the workspace's own OpenID provider, with mozilla-django-oidc.

The library runs the authorization code flow (state, nonce and PKCE kept in the session, the
code exchanged, tokens stored, the user signed in). It reads its configuration from Django
settings; here every setting comes from the tenant's SsoConfiguration instead, per request, so
there is no global OIDC configuration at all. What the library leaves unsafe or absent is done
here: every IdP call goes through the SSRF-guarded client with a 5 s bound, the ID token is
checked by apps.identity.verify (asymmetric algorithms only, cached JWKS, exact issuer and
audience, nonce), the RFC 9207 `iss` response parameter is checked, an authorization request
expires after STATE_MAX_AGE_SECONDS, and every sign-in, refused or not, is an audit event.
Starting one counts as a sign-in attempt (apps/tenants/limits.py `login_admit`), as a password does.
"""

import json
import logging
import re
import time
from urllib.parse import urlencode

from django.contrib import auth
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.accounts.models import User
from apps.accounts.services import email_clean, member_signing_in
from apps.audit.models import Outcome
from apps.audit.services import audit_first_in_window, audit_record
from apps.identity.login import SsoLoginFailed, sso_login_resolve
from apps.identity.models import SsoConfiguration
from apps.identity.services import sso_network_policy, sso_secret_place
from apps.identity.verify import TokenInvalid, idp_token_verify
from apps.providers.encryption import SecretUndecryptable, secret_decrypt
from foundry.errors import error_response
from foundry.manifests.validation import url_host
from foundry.recent import RecentValues
from foundry.runtime.network import FetchError, fetch

logger = logging.getLogger(__name__)

IDP_TIMEOUT_SECONDS = 5.0
STATE_MAX_AGE_SECONDS = 600
SESSION_ISSUER = "sso_issuer"
# What mozilla-django-oidc keeps in the session for the sign-in under way.
_SIGN_IN_KEYS = ("oidc_id_token", "oidc_access_token", "oidc_login_next")

# Library settings that are the same for every workspace; the rest come from its configuration.
_FIXED = {
    "OIDC_USE_PKCE": True,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
    "OIDC_PKCE_CODE_VERIFIER_SIZE": 64,
    "OIDC_USE_NONCE": True,
    "OIDC_STATE_SIZE": 32,
    "OIDC_NONCE_SIZE": 32,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "identity:sso_callback",
    "OIDC_REDIRECT_FIELD_NAME": "next",
    "OIDC_AUTH_REQUEST_EXTRA_PARAMS": {},
    "OIDC_STORE_ID_TOKEN": True,  # the id_token_hint of the IdP's end-session request
    "OIDC_STORE_ACCESS_TOKEN": False,
    "OIDC_CREATE_USER": False,  # decided by the configuration, in sso_login_resolve
    "LOGIN_REDIRECT_URL": "/",
    "OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS": 15 * 60,
}


def sso_config() -> SsoConfiguration | None:
    if connection.schema_name == "public":
        return None
    return SsoConfiguration.objects.filter(pk=1).first()


_recent: RecentValues[SsoConfiguration | None] = RecentValues()


def sso_config_recent() -> SsoConfiguration | None:
    """sso_config(), kept per process for FOUNDRY_TENANT_ROUTE_TTL seconds (as tenant routes):
    the bearer-token path reads it on every API request. A change made by this process is seen
    at once (sso_config_forget), a read that raced it included (foundry/recent.py); by other
    processes within that many seconds."""
    # The schema's and its tenant's: a workspace purged and provisioned again under its slug is
    # another tenant in a schema of the same name, whose configuration is not the old one's.
    key = (connection.schema_name, getattr(getattr(connection, "tenant", None), "pk", None))
    return _recent.get(key, sso_config)


def sso_config_forget(schema: str | None = None) -> None:
    schema = schema or connection.schema_name
    _recent.forget(lambda key: key[0] == schema)


class TenantSettings:
    """mozilla-django-oidc's `get_settings`, answered from the tenant's configuration."""

    config: SsoConfiguration | None = None

    def get_settings(self, attr, *default):
        config = self.config
        per_tenant = (
            {
                "OIDC_RP_CLIENT_ID": config.client_id,
                "OIDC_RP_SCOPES": config.scopes,
                "OIDC_OP_AUTHORIZATION_ENDPOINT": config.authorization_endpoint,
                "OIDC_OP_TOKEN_ENDPOINT": config.token_endpoint,
                "OIDC_OP_USER_ENDPOINT": config.userinfo_endpoint,
                "OIDC_OP_JWKS_ENDPOINT": config.jwks_uri,
            }
            if config is not None
            else {}
        )
        if attr in per_tenant:
            return per_tenant[attr]
        if attr in _FIXED:
            return _FIXED[attr]
        if default:
            return default[0]
        raise ImproperlyConfigured(f"{attr} has no per-tenant value")


def _idp_call(method: str, url: str, **kwargs) -> dict:
    """One JSON exchange with the IdP, SSRF-guarded and bounded; SsoLoginFailed when it fails."""
    try:
        result = fetch(
            method,
            url,
            hosts=[url_host(url)],
            timeout=IDP_TIMEOUT_SECONDS,
            policy=sso_network_policy(),
            **kwargs,
        )
    except FetchError as exc:
        # The sign-in page is anyone's: the fetch's own words (the endpoint, what its name resolves
        # to, the OS error: the platform's view of the network) go to the log, not there.
        logger.warning("identity provider call %s %s failed: %s", method, url, exc.message)
        raise SsoLoginFailed("idp_unreachable", "The identity provider could not be reached.") from None
    try:
        body = json.loads(result.body)
    except (ValueError, UnicodeError, RecursionError):  # RecursionError: nested past Python's stack
        body = None
    if result.status != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        # Quoted only as what OAuth says it is, an error code (RFC 6749 5.2: `invalid_grant`):
        # other text there may repeat what was sent (the client secret, the code), and it goes to
        # the sign-in page and the audit trail.
        shown = f" ({error})." if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else "."
        secret = (kwargs.get("form_body") or {}).get("client_secret")
        if isinstance(secret, str) and secret and secret in shown:
            shown = "."
        raise SsoLoginFailed("idp_refused", f"The identity provider answered HTTP {result.status}{shown}")
    return body


_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _same_address(one, other) -> bool:
    """Whether two claimed addresses are one member's address (`email_clean`'s spelling:
    `Owner@Acme.test` is `owner@acme.test`); an address it refuses is no one's."""
    if not (isinstance(one, str) and isinstance(other, str)):
        return False
    try:
        return email_clean(one) == email_clean(other)
    except ValidationError:
        return False


class TenantOIDCBackend(TenantSettings, OIDCAuthenticationBackend):
    """The authentication backend of the SSO callback (and only of it: it ignores passwords)."""

    def __init__(self, *args, **kwargs):
        # The library reads global settings here; ours are read per request in authenticate().
        self.UserModel = User
        self.config = None

    def authenticate(self, request, **kwargs):
        if request is None or "nonce" not in kwargs or getattr(request, "tenant", None) is None:
            return None
        self.config = sso_config()
        if self.config is None:
            return None
        try:
            self.OIDC_RP_CLIENT_SECRET = secret_decrypt(self.config.client_secret_encrypted, place=sso_secret_place())
        except SecretUndecryptable:
            raise SsoLoginFailed("sso_secret_unavailable", "The stored client secret cannot be decrypted.") from None
        self.OIDC_OP_TOKEN_ENDPOINT = self.config.token_endpoint
        self.OIDC_RP_CLIENT_ID = self.config.client_id
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        """The member of an SSO session, at every request while the sign-in still holds: an active
        member (the library's get_user ignores is_active), SSO still configured, with an identity
        at its current issuer and an email in its allowed domains. Disabling SSO, changing the
        provider or narrowing the domains ends the sessions it no longer admits (within
        FOUNDRY_TENANT_ROUTE_TTL seconds in other processes)."""
        config = sso_config_recent()
        if config is None:
            return None
        user = (
            User.objects.filter(pk=user_id, is_active=True, external_identities__issuer=config.issuer)
            .distinct()
            .first()
        )
        if user is None:
            return None
        if config.allowed_domains and user.email.rpartition("@")[2] not in config.allowed_domains:
            return None
        return user

    def get_token(self, payload):
        return _idp_call("POST", self.config.token_endpoint, form_body=payload, headers={"Accept": "application/json"})

    def verify_token(self, token, **kwargs):
        nonce = kwargs.get("nonce")
        if not isinstance(token, str) or not token:
            raise SsoLoginFailed("id_token_missing", "The identity provider sent no ID token.")
        if not nonce:
            raise SsoLoginFailed("token_nonce_invalid", "This sign-in has no nonce to check.")
        try:
            client_id = self.config.client_id
            return idp_token_verify(self.config, token, audience=client_id, nonce=nonce, client_id=client_id)
        except TokenInvalid as exc:
            raise SsoLoginFailed(exc.code, exc.message) from None

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed from the userinfo endpoint when the ID token lacks the
        email, whether it is verified, or the roles claim (OIDC Core 5.4: the email scope's claims
        may come from userinfo alone). Userinfo never overrides, except the ID token's
        `email_verified` when the address is userinfo's."""
        claims = dict(payload)
        wanted = ["email", "email_verified"] + ([self.config.roles_claim] if self.config.roles_claim else [])
        if all(name in claims for name in wanted) or not self.config.userinfo_endpoint:
            return claims
        # Without the roles claim the member would be signed in as a viewer, and their tokens
        # revoked as by a demotion, because userinfo could not be asked or gave no usable answer:
        # refused instead, nothing changed.
        roles_needed = bool(self.config.roles_claim) and self.config.roles_claim not in claims
        if not access_token:
            if roles_needed:
                raise SsoLoginFailed("idp_refused", "The identity provider gave no access token to ask userinfo with.")
            return claims
        try:
            extra = _idp_call("GET", self.config.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"})
        except SsoLoginFailed:
            if roles_needed:
                raise
            return claims  # the ID token alone decides; a missing email is refused below
        if extra.get("sub") != claims["sub"]:  # about someone else: not a word of it counts (OIDC Core 5.3.2)
            if roles_needed:
                raise SsoLoginFailed("idp_refused", "The identity provider's userinfo answered for another subject.")
            return claims
        if "email" not in claims and "email" in extra:
            # The address is userinfo's: so is the word on whether it is verified. The ID token's
            # `email_verified`, naming no address, vouches for none (userinfo's, or nothing).
            claims.pop("email_verified", None)
        for name, value in extra.items():
            if (
                name == "email_verified"
                and "email" in claims
                and not _same_address(extra.get("email"), claims["email"])
            ):
                continue  # vouches for another address than the ID token's: not for this one
            claims.setdefault(name, value)
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        self.request.sso_claims = claims
        return sso_login_resolve(self.config, claims, request=self.request)


class SsoLoginView(TenantSettings, OIDCAuthenticationRequestView):
    """GET /sso/login/: redirect to the workspace's identity provider."""

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        from apps.accounts.views import login_attempt_admit, login_throttled, login_throttled_first

        decision = login_attempt_admit(request, None)  # a sign-in attempt, of an account named later
        if not decision.allowed:
            if login_throttled_first(request, decision, None):
                audit_record(
                    action="auth.login.throttled", data={"method": "sso"}, outcome=Outcome.DENIED, request=request
                )
            return login_throttled(request, decision)
        self.config = sso_config()
        if self.config is None:
            return error_response(
                request, status=404, code="sso_not_configured", message="This workspace has no single sign-on."
            )
        self.OIDC_OP_AUTH_ENDPOINT = self.config.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = self.config.client_id
        return super().get(request)


class SsoCallbackView(TenantSettings, OIDCAuthenticationCallbackView):
    """GET /sso/callback/: the identity provider's answer. Every outcome is an audit event."""

    def get(self, request):
        self.config = sso_config()
        self.state_known = False  # the answer is to a sign-in this session started
        if self.config is None:
            return self._refused(request, "sso_not_configured", "This workspace has no single sign-on.")
        try:
            self._precheck(request)
            response = super().get(request)
        except SsoLoginFailed as exc:
            return self._refused(request, exc.code, exc.message)
        if not getattr(self, "user", None) or not request.user.is_authenticated:
            return self._refused(request, "sso_failed", "Single sign-on did not complete.")
        return response

    def _precheck(self, request: HttpRequest) -> None:
        """What the library does not check: a known, fresh state, the IdP's error, RFC 9207 iss."""
        states = request.session.get("oidc_states")
        state = request.GET.get("state", "")
        entry = states.get(state) if isinstance(states, dict) else None
        if entry is None:
            raise SsoLoginFailed("state_invalid", "This sign-in was not started here, or was already used.")
        self.state_known = True
        if time.time() - entry.get("added_on", 0) > STATE_MAX_AGE_SECONDS:
            self._forget(request, state)
            raise SsoLoginFailed("state_expired", "This sign-in took too long; start again.")
        issuer = request.GET.get("iss")
        if issuer is not None and issuer != self.config.issuer:
            self._forget(request, state)
            raise SsoLoginFailed("iss_mismatch", "The answer comes from another identity provider (RFC 9207).")
        if issuer is None and self.config.iss_parameter_supported:
            self._forget(request, state)
            raise SsoLoginFailed("iss_missing", "The identity provider's answer lacks its iss parameter (RFC 9207).")
        if request.GET.get("error"):
            self._forget(request, state)
            raise SsoLoginFailed("idp_error", f"The identity provider refused: {request.GET['error'][:100]}.")
        if not request.GET.get("code"):
            self._forget(request, state)
            raise SsoLoginFailed("callback_invalid", "The identity provider's answer has no code.")

    @staticmethod
    def _forget(request: HttpRequest, state: str) -> None:
        request.session["oidc_states"].pop(state, None)
        request.session.modified = True

    def login_success(self):
        with transaction.atomic():
            if not member_signing_in(self.user):  # removed, deactivated or shut out since the claims were resolved
                message = "This member was deactivated or removed, or the workspace's sign-in rules changed meanwhile."
                raise SsoLoginFailed("user_inactive", message)
            return self._login_success()

    def _login_success(self):
        if self.request.user.is_authenticated and self.request.user == self.user:
            # Signed in already (with a password, say): the library keeps that session as it was,
            # which would go on as a password session recorded as an SSO sign-in. It becomes this
            # sign-in's: a new session key, the SSO backend (so SSO's rules judge it from now on).
            self.request.session.cycle_key()
            auth.login(self.request, self.user)
        elif self.request.user.is_authenticated:
            # Another member's session: auth.login starts an empty one, without what the library
            # stored in it for this sign-in (the ID token, which sign-out hands the provider to end
            # its session too; where to go next). Carried into the new one.
            carried = {key: self.request.session[key] for key in _SIGN_IN_KEYS if key in self.request.session}
            auth.login(self.request, self.user)
            self.request.session.update(carried)
        response = super().login_success()
        self.request.session[SESSION_ISSUER] = self.config.issuer
        audit_record(
            action="auth.login",
            actor=self.user,
            data={"method": "sso", "issuer": self.config.issuer},
            request=self.request,
        )
        return response

    def _refused(self, request: HttpRequest, code: str, message: str) -> HttpResponse:
        from apps.accounts.views import login_target

        # A sign-in this session started and that failed leaves nobody signed in; an answer to
        # none (a forged or replayed state, a link from another site) leaves the session alone.
        known = getattr(self, "state_known", False)
        if request.user.is_authenticated and known:
            # The session's member is signed out by it: recorded as a sign-out is, with why.
            audit_record(action="auth.logout", data={"sso": True, "reason": code}, request=request)
            auth.logout(request)
        # An answer to a sign-in started here is one attempt (/sso/login/ is rate limited); one to
        # none anyone can send at will: recorded once a minute per reason and address.
        if known or audit_first_in_window(f"sso-callback:{code}", request):
            claims = getattr(request, "sso_claims", None) or {}
            audit_record(
                action="auth.login.failed",
                target=login_target(claims.get("email") if isinstance(claims.get("email"), str) else None),
                data={"method": "sso", "reason": code},
                outcome=Outcome.FAILURE,
                request=request,
            )
        return error_response(request, status=403, code=code, message=f"Sign-in refused: {message}")


def sso_logout_url(request: HttpRequest, id_token: str | None) -> str | None:
    """Where to send a browser whose SSO session just ended: the IdP's end-session endpoint
    (RP-initiated logout), coming back to our sign-in page; None when the IdP has none."""
    config = sso_config()
    if config is None or not config.end_session_endpoint or not id_token:
        return None
    params = {
        "id_token_hint": id_token,
        "client_id": config.client_id,
        "post_logout_redirect_uri": request.build_absolute_uri(reverse("accounts:login")),
    }
    return f"{config.end_session_endpoint}{'&' if '?' in config.end_session_endpoint else '?'}{urlencode(params)}"
