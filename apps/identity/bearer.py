"""`Authorization: Bearer <JWT>` on the API and MCP: the workspace IdP's access tokens and the
platform's service tokens.

An IdP access token authenticates as the member its (issuer, subject) is linked to — linked at
their first sign-in to the console — with the role its roles claim maps to (the stored role when
the token carries no such claim; owners stay owners), while that member's address is in the
workspace's allowed domains (as console sessions are). It must be signed by the workspace's
issuer, for the workspace's audience, and, when it names the client it was issued to (`azp` or
`client_id`), to the workspace's client: a token another workspace obtained from the same
provider is refused here.

A refusal after the signature verified (expired, wrong audience, unknown member…) is an audit
event `auth.token.rejected`; a token whose signature does not verify is noise and is not.
"""

from django.http import HttpRequest

from apps.accounts.models import User
from apps.accounts.permissions import Role, role_exceeds
from apps.audit.models import Outcome
from apps.audit.services import audit_first_in_window, audit_record, subject_digest
from apps.identity.login import claim_values, mapped_role, member_demoted_by_token
from apps.identity.models import ExternalIdentity
from apps.identity.oidc import sso_config_recent
from apps.identity.service_tokens import ServicePrincipal, service_issuer, service_token_verify
from apps.identity.verify import TokenInvalid, claim_text_plain, idp_token_verify, token_parts
from foundry.db.columns import columns_of

# Refusals that can only happen once the signature verified: worth an audit event.
_SIGNED_REFUSALS = {
    "token_expired",
    "token_not_yet_valid",
    "token_issuer_invalid",
    "token_audience_invalid",
    "token_claims_missing",
    "token_nonce_invalid",
    "token_client_invalid",
    "token_tenant_invalid",
    "token_lifetime_invalid",
    "token_not_access",  # an ID token (a verified one) offered as an access token
    "identity_unknown",
    "user_inactive",
    "email_domain_refused",
    "role_changed",
}


def looks_like_jwt(raw: str) -> bool:
    return raw.count(".") == 2 and raw.startswith("eyJ")


def principal_for_bearer(raw: str, *, audience: str, request: HttpRequest | None = None, resource: str = ""):
    """(principal, credential) for any bearer token on this workspace's host — a Foundry API
    token (`af_…`), an IdP access token or a platform service token — or TokenInvalid.
    The API (foundry/api/authentication.py) and MCP (foundry/mcp/gateway.py) both use it.
    `audience`: of service tokens; `resource`: a URL an IdP token may also be issued for (RFC 8707;
    the MCP endpoint), beside the workspace's configured audience."""
    from apps.tokens.models import TokenPrincipal
    from apps.tokens.services import token_authenticate

    if looks_like_jwt(raw):
        return bearer_authenticate(raw, audience=audience, request=request, resource=resource)
    token = token_authenticate(raw, request=request)
    if token is None:
        raise TokenInvalid("invalid_token", "The token is not valid, expired or revoked.")
    return TokenPrincipal(token), token


def bearer_authenticate(
    raw: str, *, audience: str = "foundry-api", request: HttpRequest | None = None, resource: str = ""
):
    """(principal, claims) for a JWT bearer token on this workspace's host, or TokenInvalid."""
    try:
        return _authenticate(raw, audience, resource, request)
    except TokenInvalid as exc:
        subject = _unverified_subject(raw) if exc.code in _SIGNED_REFUSALS else ""
        subject = subject and subject_digest(subject)  # the trail outlives an erasure: not the subject itself
        if exc.code in _SIGNED_REFUSALS and audit_first_in_window(f"jwt:{subject}:{exc.code}", request):
            audit_record(
                action="auth.token.rejected",
                target=("jwt", subject),
                data={"reason": exc.code, "kind": "jwt"},
                outcome=Outcome.FAILURE,
                request=request,
            )
        raise


def _unverified_subject(raw: str) -> str:
    """The subject a refused token names, for the trail; "" when it names none an identifier could
    be (a lone surrogate, which neither Redis nor PostgreSQL takes; a control character)."""
    try:
        subject = str(token_parts(raw)[1].get("sub", ""))[:200]
    except TokenInvalid:
        return ""
    return subject if claim_text_plain(subject) else ""


# Table names come from the models; the values are bound parameters.
_MEMBER_SQL = (
    f"SELECT {columns_of(User, 'u')} FROM {User._meta.db_table} u"  # noqa: S608
    f" JOIN {ExternalIdentity._meta.db_table} e ON e.user_id = u.id WHERE e.issuer = %s AND e.subject = %s"
)


def member_of(issuer: str, subject: str) -> User | None:
    """The member linked to (issuer, subject). One statement, written out: this runs on every
    bearer request, and the ORM's compiling of the join cost more than the query itself."""
    found = list(User.objects.raw(_MEMBER_SQL, [issuer, subject]))
    return found[0] if found else None


# The `typ` values an access token may carry: RFC 9068's, and plain JWT (Entra, Okta send it).
_ACCESS_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})


def _authenticate(raw: str, audience: str, resource: str, request: HttpRequest | None = None):
    header, unverified = token_parts(raw)
    if unverified.get("iss") == service_issuer():
        principal: ServicePrincipal = service_token_verify(raw, audience=audience, header=header)
        return principal, principal.claims
    config = sso_config_recent()
    if config is None:
        raise TokenInvalid("sso_not_configured", "This workspace accepts no identity-provider tokens.")
    audiences = [config.api_audience, resource] if resource else config.api_audience
    claims = idp_token_verify(config, raw, audience=audiences, header=header)
    typ = header.get("typ")
    if typ is not None and str(typ).lower() not in _ACCESS_TYPES:
        # Explicitly typed as another kind of token (a logout token, `logout+jwt`; a JWT of some
        # other profile): never an access token, whatever its claims (RFC 8725 3.11, RFC 9068 4).
        raise TokenInvalid("token_not_access", f"A token of type {str(typ)[:40]!r} is not an access token for the API.")
    if "nonce" in claims and str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
        # An ID token (a console sign-in's carries the nonce it was asked with), meant for the
        # client alone and sent through browsers (`id_token_hint`): not an access token (RFC 9068).
        raise TokenInvalid("token_not_access", "This is an ID token, not an access token for the API.")
    client = claims.get("azp") or claims.get("client_id")
    if client is not None and client != config.client_id:
        raise TokenInvalid("token_client_invalid", "This token was issued to another client.")
    user = member_of(config.issuer, claims["sub"])
    if user is None:
        raise TokenInvalid("identity_unknown", "No member is linked to this identity; sign in to the console once.")
    if not user.is_active:
        raise TokenInvalid("user_inactive", "This member is deactivated.")
    # As for console sessions (oidc.py get_user): narrowing the allowed domains shuts out the
    # members it no longer admits, on the API and MCP too, whatever token their provider still issues.
    if config.allowed_domains and user.email.rpartition("@")[2] not in config.allowed_domains:
        raise TokenInvalid("email_domain_refused", "This member's address is outside the workspace's allowed domains.")
    if config.roles_claim and claim_values(claims, config.roles_claim) is not None and user.role != Role.OWNER:
        role = mapped_role(config, claims)
        above, below = role_exceeds(role, user.role), role_exceeds(user.role, role)
        if above and below:
            # Another role altogether: acting with either would give what the other lacks.
            raise TokenInvalid(
                "role_changed",
                "The identity provider names another role than the workspace stored; sign in to the "
                "console once to take it up.",
            )
        if below:
            member_demoted_by_token(user, role, config, claims, request=request)  # stored, as a sign-in would
            user.role = role  # this request's, whenever the token was issued
        # Above: a promotion waits for a sign-in (the token may also be older than the sign-in that
        # stored a demotion, and carry the role it replaced): the stored role acts.
    return user, claims
