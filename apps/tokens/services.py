"""API tokens: issue (the secret is shown once), authenticate, revoke — one by hand, or all a
member issued when they leave or their role is lowered."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role, role_exceeds
from apps.audit.models import Outcome
from apps.audit.services import audit_first_in_window, audit_record
from apps.tokens.models import ApiToken, RevokedReason, Scope, TokenPrincipal
from foundry.db.locks import xact_lock_shared

TOKEN_RE = re.compile(r"^af_([a-z0-9]{12})_([A-Za-z0-9_-]{43})\Z")
LAST_USED_GRANULARITY = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=366)
_DURATION = re.compile(r"^([0-9]{1,4})([dhm])\Z")


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    plaintext: str  # shown once, never stored


def _digest(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def token_expiry_parse(text: str | None) -> timedelta | None:
    """'30d', '12h', '90m' → timedelta; None or '' → no expiry."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if not match:
        raise ValidationError('Write an expiry like "30d", "12h" or "90m".', code="expiry_invalid")
    amount, unit = int(match.group(1)), match.group(2)
    delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]
    if not timedelta(minutes=1) <= delta <= MAX_LIFETIME:
        raise ValidationError("An expiry is between 1 minute and 366 days.", code="expiry_invalid")
    return delta


@transaction.atomic
def token_issue(
    *,
    actor: object,
    name: str,
    role: str,
    scopes: list[str],
    expires_in: timedelta | None = None,
    credential: object = None,
    request: HttpRequest | None = None,
) -> IssuedToken:
    """Create a token. A member can only issue tokens with a role they could grant themselves.
    `credential`: what the actor authenticated with (an API request's `request.auth`: the token,
    or a bearer token's claims); the new token expires no later than it. The token records the
    member it rests on (`_issuing_member`), so it goes when they do."""
    errors: dict[str, ValidationError] = {}
    name = (name or "").strip()
    if not name or len(name) > 100 or not name.isprintable():
        errors["name"] = ValidationError("A name of 1 to 100 printable characters.", code="name_invalid")
    if role not in Role.values:
        errors["role"] = ValidationError(f"Unknown role “{role}”.", code="role_invalid")
    unknown = [s for s in scopes if s not in Scope.values]
    if not scopes or unknown:
        errors["scopes"] = ValidationError(
            f"Scopes are a non-empty list of: {', '.join(Scope.values)}.", code="scopes_invalid"
        )
    if errors:
        raise ValidationError(errors)
    if hasattr(actor, "has_permission"):
        if not actor.has_permission(Permission.SETTINGS_MANAGE):
            raise PermissionDenied("Your role does not allow managing API tokens.")
        if role == Role.OWNER and not actor.has_permission(Permission.OWNERS_MANAGE):
            raise PermissionDenied("Only owners issue owner tokens.")
    if hasattr(actor, "has_scope"):  # a token issuing a token: never wider than itself
        lacking = sorted({scope for scope in scopes if not actor.has_scope(scope)})
        if lacking:
            raise PermissionDenied(
                f"A token issues tokens only with scopes it holds; this one lacks {', '.join(lacking)}."
            )
    expires_at = timezone.now() + expires_in if expires_in else None
    outlived = _issuer_expiry(actor, credential)
    if outlived is not None and outlived <= timezone.now():
        # A bearer token in the minute of clock skew its verifier allows past `exp`: whatever it
        # issued would be expired from birth (shown once, refused at its first use).
        raise PermissionDenied("The credential issuing this token has expired; sign in again to issue tokens.")
    if outlived is not None and (expires_at is None or expires_at > outlived):
        expires_at = outlived  # never longer-lived than the credential that issues it
    issued_by = _issuing_member(actor, role)
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        prefix=prefix,
        secret_hash=_digest(secret),
        role=role,
        scopes=sorted(set(scopes)),
        created_by=str(actor)[:255],
        issued_by=issued_by,
        issued_by_token=actor.token if isinstance(actor, TokenPrincipal) else None,
        expires_at=expires_at,
    )
    audit_record(
        action="token.issued", actor=actor, target=token, data={"role": role, "scopes": token.scopes}, request=request
    )
    return IssuedToken(token=token, plaintext=f"af_{prefix}_{secret}")


def _issuing_member(actor: object, role: str) -> User | None:
    """The member a new token of `role` rests on, its row locked until the transaction ends: the
    member issuing it (signed in, or with their identity provider's token), or, when an API token
    issues it, that token's own member; None for a platform service token or an operator's
    command. The lock makes a removal or a demotion running at the same moment wait for the
    token, then revoke it; one committed while this request ran is honoured here: a member
    removed meanwhile, a member whose stored role no longer covers `role`, or an issuing token
    revoked meanwhile (by that demotion, or by hand) issues nothing (PermissionDenied). So does a
    member whom the workspace's sign-in settings left no way in meanwhile: those settings' lock is
    shared first (a change waits for the token, then revokes it with the member's others), and the
    settings are read as they stand."""
    from apps.accounts.services import SSO_RULES_LOCK
    from apps.identity.oidc import sso_config
    from apps.identity.services import sign_in_left

    issuing = None
    if isinstance(actor, User):
        member_id = actor.pk
    elif isinstance(actor, TokenPrincipal):
        member_id = ApiToken.objects.filter(pk=actor.token.pk).values_list("issued_by_id", flat=True).first()
        issuing = actor.token.pk
    else:
        return None
    # Before the rows: the order a sign-in takes them in, and a settings change holds the lock
    # while it revokes the tokens of those it shuts out (this one's issuing token among them).
    workspace = connection.schema_name != "public"
    if workspace:
        xact_lock_shared(SSO_RULES_LOCK.format(schema=connection.schema_name))
    # The member's row first, then the issuing token's: the order a removal or a demotion takes
    # them in (member, then their tokens), so the two wait for each other instead of deadlocking.
    member = User.objects.select_for_update(no_key=True).filter(pk=member_id).first() if member_id else None
    if issuing is not None:
        token = ApiToken.objects.select_for_update(no_key=True).filter(pk=issuing).first()
        if token is None or not token.is_usable or token.issued_by_id != member_id:
            raise PermissionDenied("The token issuing this one is no longer valid.")
    if member_id is None:
        return None
    if member is None:
        raise PermissionDenied("The member issuing this token is no longer in the workspace.")
    if not member.has_permission(Permission.SETTINGS_MANAGE) or (
        role == Role.OWNER and not member.has_permission(Permission.OWNERS_MANAGE)
    ):
        raise PermissionDenied(f"The issuing member's role ({member.role}) no longer allows issuing this token.")
    if role_exceeds(role, member.role):
        raise PermissionDenied(f"The issuing member's role ({member.role}) no longer allows a {role} token.")
    if workspace and not sign_in_left(member, sso_config()):
        raise PermissionDenied("The issuing member can no longer sign in to this workspace.")
    return member


def _issuer_expiry(actor: object, credential: object = None) -> datetime | None:
    """When the credential issuing a token expires: an API token's expiry, a bearer token's (a
    platform service token's, an identity provider's access token's) `exp`; None for a person
    signed in to the console, or a credential that never expires."""
    for holder in (getattr(actor, "token", None), credential):
        if isinstance(holder, ApiToken):
            return holder.expires_at
    for claims in (getattr(actor, "claims", None), credential):
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if exp is None or isinstance(exp, bool):
            continue
        try:
            seconds = int(exp)  # as the JWT library checked it: a number, or a numeric string
        except (TypeError, ValueError, OverflowError):
            return timezone.now()  # an expiry not understood: nothing issued outlives this moment
        # Past the longest lifetime a token may have, it bounds nothing (and may be past year 9999).
        latest = timezone.now() + MAX_LIFETIME
        return latest if seconds >= latest.timestamp() else datetime.fromtimestamp(seconds, tz=UTC)
    return None


def token_authenticate(raw: str, *, request: HttpRequest | None = None) -> ApiToken | None:
    """The usable token of the current schema that `raw` proves, or None.

    A real token refused (wrong secret, expired, revoked) is an audit event `auth.token.rejected`
    on that token, once a minute per token, reason and address (audit_first_in_window); a string
    that names no token of this workspace is not (it is noise)."""
    match = TOKEN_RE.match(raw or "")
    if not match:
        return None
    prefix, secret = match.groups()
    token = ApiToken.objects.filter(prefix=prefix).first()
    if token is None:
        return None
    if not hmac.compare_digest(token.secret_hash, _digest(secret)) or not token.is_usable:
        reason = (
            "wrong_secret"
            if not hmac.compare_digest(token.secret_hash, _digest(secret))
            else ("revoked" if token.revoked_at else "expired")
        )
        if audit_first_in_window(f"token:{token.pk}:{reason}", request):
            audit_record(
                action="auth.token.rejected",
                actor=None,
                target=token,
                data={"reason": reason},
                outcome=Outcome.FAILURE,
                request=request,
            )
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def token_revoke(*, actor: object, token: ApiToken, request: HttpRequest | None = None) -> ApiToken:
    """Revoke now: the next request with this token is refused — and with any token it issued,
    and those issued in turn (a leaked token's offspring go with it), each one `token.revoked`
    event whose details carry the reason `token_revoked`."""
    if hasattr(actor, "has_permission"):
        from apps.accounts.services import actor_now  # accounts' services revoke tokens too

        for standing in (actor, actor_now(actor)):  # as the request began, then as it stands now
            if not standing.has_permission(Permission.SETTINGS_MANAGE):
                raise PermissionDenied("Your role does not allow managing API tokens.")
            if token.role == Role.OWNER and not standing.has_permission(Permission.OWNERS_MANAGE):
                raise PermissionDenied("Only owners revoke owner tokens.")
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="token.revoked", actor=actor, target=token, request=request)
    _offspring_revoke(actor, token, request)
    return token


def _offspring_revoke(actor: object, token: ApiToken, request: HttpRequest | None) -> None:
    reason = RevokedReason.ISSUING_TOKEN_REVOKED
    parents, seen = [token.pk], {token.pk}
    while parents:
        children = list(
            ApiToken.objects.select_for_update()
            .filter(issued_by_token__in=parents, revoked_at__isnull=True)
            .exclude(pk__in=seen)
            .order_by("pk")
        )
        now = timezone.now()
        for child in children:
            child.revoked_at, child.revoked_reason = now, reason
            child.save(update_fields=["revoked_at", "revoked_reason"])  # one by one: history records each
            audit_record(action="token.revoked", actor=actor, target=child, data={"reason": reason}, request=request)
        parents = [child.pk for child in children]
        seen.update(parents)


@transaction.atomic
def token_revoke_issued_by(
    *,
    actor: object,
    member: User,
    reason: RevokedReason,
    role: str | None = None,
    request: HttpRequest | None = None,
) -> list[ApiToken]:
    """Revoke the unrevoked tokens `member` issued (and the tokens those issued): all of them
    when the member leaves; given `role`, the member's new role, those whose role may do
    something `role` may not. A token never keeps a standing its member lost. Each is one
    `token.revoked` event whose details carry `reason`; `actor` is who removed or demoted the
    member. The member's row stays locked to the end of the transaction, so no token of theirs
    is issued meanwhile (`_issuing_member` waits for it)."""
    list(User.objects.select_for_update().filter(pk=member.pk).values_list("pk"))
    live = ApiToken.objects.select_for_update().filter(issued_by=member, revoked_at__isnull=True).order_by("pk")
    doomed = [token for token in live if role is None or role_exceeds(token.role, role)]
    now = timezone.now()
    for token in doomed:
        token.revoked_at, token.revoked_reason = now, reason
        token.save(update_fields=["revoked_at", "revoked_reason"])  # saved one by one: history records each
        audit_record(action="token.revoked", actor=actor, target=token, data={"reason": reason}, request=request)
    # Then their offspring, however revoked — once all of them are: a token one of the member's
    # tokens minted is the member's too (doomed, revoked above, once), not offspring revoked again.
    for token in doomed:
        _offspring_revoke(actor, token, request)
    return doomed
