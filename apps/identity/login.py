"""Who a verified set of identity-provider claims signs in as, in the current workspace.

Members are found by (issuer, subject) — never by email alone: the same address at two
providers is two people as far as we can tell. A member who exists without any provider
identity (invited, or created before SSO) is linked on first sign-in only when the provider
asserts the address is verified. Roles are re-read from the configured claim at every sign-in
(a lowered one revokes the member's API tokens that outrank it, as `member_role_change` does);
owner is never granted or taken away by a provider.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.permissions import Role, role_exceeds
from apps.accounts.services import SSO_EMAIL_LOCK, email_clean
from apps.audit.services import audit_record, subject_digest
from apps.identity.models import ExternalIdentity, SsoConfiguration
from apps.identity.verify import claim_text_plain
from apps.tokens.models import RevokedReason
from apps.tokens.services import token_revoke_issued_by
from foundry.db.locks import xact_lock
from foundry.errors import CodedError
from foundry.text import text_readable, text_visible

# Several mapped values: the one granting most wins.
ROLE_RANK = [Role.ADMIN, Role.DEVELOPER, Role.OPERATOR, Role.VIEWER]


class SsoLoginFailed(CodedError):
    """Sign-in refused; `code` is stable and goes into the audit trail."""


def claim_values(claims: dict, name: str) -> list[str] | None:
    """A claim as a list of strings (a string, a list, or a dotted path into nested objects);
    None when the claims do not carry it at all."""
    value = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def mapped_role(config: SsoConfiguration, claims: dict) -> str | None:
    """The Foundry role the claims map to; None when the workspace maps no roles.

    With a mapping configured and no value matching: viewer (signed in, may change nothing)."""
    if not config.roles_claim:
        return None
    values = claim_values(claims, config.roles_claim) or []
    granted = {config.role_map[v] for v in values if v in config.role_map}
    return next((role for role in ROLE_RANK if role in granted), Role.VIEWER)


def email_verified(claims: dict) -> bool | None:
    """What the provider asserts of the address: True, False, or None when it says nothing
    (`email_verified` as a boolean, or as the string some send: Cognito's "true"/"false")."""
    value = claims.get("email_verified")
    if isinstance(value, str):
        value = {"true": True, "false": False}.get(value.strip().lower())
    return value if isinstance(value, bool) else None


def claims_email(config: SsoConfiguration, claims: dict) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise SsoLoginFailed("email_missing", "The identity provider did not give an email address.")
    try:
        email = email_clean(email)
    except ValidationError:
        raise SsoLoginFailed("email_invalid", "The identity provider gave an address that is not valid here.") from None
    verified = email_verified(claims)
    if verified is False:
        raise SsoLoginFailed("email_unverified", "The identity provider says this email address is not verified.")
    if config.allowed_domains and verified is not True:
        # The domain fence is only as strong as the address: one a provider lets its users pick
        # (and does not vouch for) would admit anyone there who typed an address at the domain.
        raise SsoLoginFailed(
            "email_unverified",
            "The identity provider does not assert this address verified; a workspace that limits "
            "sign-in to its email domains admits verified addresses only.",
        )
    domain = email.rpartition("@")[2]
    if config.allowed_domains and domain not in config.allowed_domains:
        raise SsoLoginFailed("email_domain_refused", f"Addresses at {domain[:100]} may not sign in here.")
    return email


@transaction.atomic
def sso_login_resolve(config: SsoConfiguration, claims: dict, *, request=None) -> User:
    """The member these verified claims sign in as (created when allowed), roles re-synced."""
    subject = claims["sub"]
    email = claims_email(config, claims)
    role = mapped_role(config, claims)
    # One sign-in of a person (and of an address) at a time: two tabs finishing a first sign-in at
    # once would both find no identity and both create the member. The second waits here, then
    # finds what the first made.
    schema = connection.schema_name
    for key in (f"sso.identity:{schema}:{config.issuer}\n{subject}", SSO_EMAIL_LOCK.format(schema=schema, email=email)):
        xact_lock(key)
    identity = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=config.issuer, subject=subject)
        .first()
    )
    if identity is None:
        identity = _link_or_create(config, claims, email, role, request)
    user = identity.user
    if not user.is_active:
        raise SsoLoginFailed("user_inactive", "This member is deactivated.")
    changed = ["email"] if _email_synced(user, email, config, claims, request) else []
    if role is not None and user.role != role and user.role != Role.OWNER:
        member_role_synced(user, role, config, request=request)
        changed.append("role")
    name = claims.get("name")
    name = name.strip()[:200] if isinstance(name, str) else None  # judged as it would be stored
    if (
        name
        and claim_text_plain(name)
        and text_readable(name)  # no text-direction character, as a name typed in the console
        and text_visible(name)  # not zero-width characters alone: the member would show with no name
        and name != user.full_name
    ):
        user.full_name = name
        changed.append("full_name")
    if changed:
        user.save(update_fields=changed)
    identity.email = email
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["email", "last_login_at"])
    return user


def _email_synced(user: User, email: str, config: SsoConfiguration, claims: dict, request) -> bool:
    """The provider moved the member to another address since they last signed in: the stored
    one follows it (the caller saves it), so that their sessions and bearer tokens, judged on it
    against the allowed domains, admit what the sign-in admitted — a sign-in on the new address
    opened a session the old one then refused at every page. Only an address the provider asserts
    verified, and not another member's (`identity_conflict`); the break-glass owner's stays as the
    settings name it. Audited as `member.email_synced` (no address in the trail: it is personal
    data, kept in the erasable actor table)."""
    if email == user.email or email_verified(claims) is not True:
        return False
    if config.break_glass_email and config.break_glass_email == user.email:
        return False
    if User.objects.filter(email=email).exclude(pk=user.pk).exists():
        raise SsoLoginFailed(
            "identity_conflict", f"{email} belongs to another member; ask an admin to sort the two out."
        )
    user.email = email
    audit_record(action="member.email_synced", actor=user, target=user, data={"issuer": config.issuer}, request=request)
    return True


def member_role_synced(user: User, role: str, config: SsoConfiguration, *, request=None) -> None:
    """`user` takes the role the provider's claims map to (the caller saves it): audited as
    `member.role_synced`, and the tokens they issued that may do something the new role may not
    are revoked in the same transaction (`issuer_demoted`)."""
    audit_record(
        action="member.role_synced",
        actor=user,
        target=user,
        data={"from": user.role, "to": role, "issuer": config.issuer},
        request=request,
    )
    user.role = role
    token_revoke_issued_by(actor=user, member=user, reason=RevokedReason.ISSUER_DEMOTED, role=role, request=request)


def member_demoted_by_token(user: User, role: str, config: SsoConfiguration, claims: dict, *, request=None) -> None:
    """An access token of the provider's maps its member to a role below the stored one (one that
    may do only part of what the stored one may): the provider demoted them since they last signed
    in. The demotion is stored as a sign-in stores it — the tokens they issued with the standing
    they lost are revoked — rather than waiting for a sign-in they may never make. Only a token
    issued after their last sign-in counts (an older one carries the claims that sign-in replaced),
    and only a demotion: a promotion waits for a sign-in, as a token's claims are its issue time's."""
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        return
    with transaction.atomic():
        # The member's row first, then the identity's: the order a removal takes them in (the
        # member locked, then its identities deleted with it), so the two wait, never deadlock.
        member = User.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
        if member is None or member.role == Role.OWNER or not role_exceeds(member.role, role):
            return
        identity = (
            ExternalIdentity.objects.select_for_update()
            .filter(issuer=config.issuer, subject=claims["sub"], user_id=member.pk)
            .first()
        )
        if identity is None:
            return
        if identity.last_login_at is not None and issued <= identity.last_login_at.timestamp():
            return
        if role_exceeds(role, member.role):
            return  # not below: another role altogether, which a sign-in stores
        member_role_synced(member, role, config, request=request)
        member.save(update_fields=["role"])


def _link_or_create(config, claims: dict, email: str, role: str | None, request) -> ExternalIdentity:
    existing = User.objects.select_for_update().filter(email=email).first()
    if existing is not None:
        if existing.external_identities.exists():
            # The address belongs to a member who signs in as someone else (another provider or
            # another subject): never merge two identities because their emails match.
            raise SsoLoginFailed(
                "identity_conflict", f"{email} belongs to a member linked to another identity; ask an admin."
            )
        if email_verified(claims) is not True:
            raise SsoLoginFailed(
                "identity_conflict",
                f"{email} is already a member; the provider must assert the address verified to link it.",
            )
        user = existing
    elif not config.jit_enabled:
        raise SsoLoginFailed("user_not_provisioned", f"{email} is not a member of this workspace; ask an admin.")
    else:
        user = User.objects.create_user(email=email, role=role or Role.VIEWER)
        audit_record(
            action="member.provisioned",
            actor=user,
            target=user,
            data={"role": user.role, "issuer": config.issuer, "via": "sso"},
            request=request,
        )
    identity = ExternalIdentity.objects.create(issuer=config.issuer, subject=claims["sub"], user=user, email=email)
    audit_record(
        action="identity.linked",
        actor=user,
        target=user,
        data={"issuer": config.issuer, "subject": subject_digest(claims["sub"])},
        request=request,
    )
    return identity
