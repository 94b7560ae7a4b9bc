"""Member management inside the current tenant schema. Every change is audited in the same
transaction; rules about owners live here, not in views. A member's API tokens stand or fall
with them: removing a member, or lowering their role, revokes what they issued in the same
transaction (`token_revoke_issued_by`)."""

import unicodedata
from datetime import UTC, timedelta

import idna
from confusable_homoglyphs.categories import alias as script_of
from confusable_homoglyphs.confusables import confusables_data
from django.conf import settings
from django.contrib.auth import SESSION_KEY, load_backend
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import get_public_schema_name

from apps.accounts.models import User
from apps.accounts.permissions import Permission, Role
from apps.accounts.sessions import sessions_end
from apps.audit.services import audit_record
from apps.tokens.models import ApiToken, RevokedReason
from apps.tokens.services import token_revoke_issued_by
from foundry.db.locks import xact_lock, xact_lock_shared
from foundry.text import text_readable, text_visible

# The lock a change of a workspace's sign-in rules holds (apps/identity/services.py), and a
# sign-in shares (member_signing_in).
SSO_RULES_LOCK = "sso.config:{schema}"
# The lock a first SSO sign-in of an address and adding a member of that address take in turns
# (apps/identity/login.py): per workspace, so that one workspace's sign-ins never wait for another's.
SSO_EMAIL_LOCK = "sso.email:{schema}:{email}"
# The scripts a label may mix (UTS #39 "highly restrictive", as browsers judge a name they show
# as typed rather than as punycode): any one script, or Latin with these East Asian sets.
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def _scripts_mixed(label: str) -> bool:
    """Whether a domain label mixes scripts no single language writes together: `acme` with a
    Cyrillic U+0430 for its `a`, which reads as acme.test wherever the address is shown."""
    scripts = {script_of(char) for char in label} - {"COMMON", "INHERITED"}
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS)


# Letters drawn as ASCII ones: those Unicode's confusables (UTS #39) list beside an ASCII letter or
# digit (Latin alpha U+0251 for a, dotless i U+0131, Greek omicron and Armenian oh for o), and the Cyrillic letters
# Chromium's IDN spoof checker reads as Latin ones.
_ASCII_DRAWN = frozenset(
    char
    for char, glyphs in confusables_data.items()
    if not char.isascii() and any(len(g["c"]) == 1 and g["c"] in "abcdefghijklmnopqrstuvwxyz0123456789" for g in glyphs)
) | frozenset("асԁеһіјӏорԛѕԝхуъьҽпгѵѡ")


def _drawn_as_ascii(label: str) -> bool:
    """Whether a non-ASCII label is drawn as an ASCII one: each of its non-ASCII letters looks
    like an ASCII one (acme with a Latin alpha for its a, coca in Cyrillic letters): under an ASCII
    top-level domain it reads as the ASCII name. `bücher` does not: its ü is no ASCII letter's double."""
    return not label.isascii() and all(char.isascii() or char in _ASCII_DRAWN for char in label)


def domain_spelling(domain: str) -> str | None:
    """An email domain (lowercase) in its one spelling: U-labels for its A-labels; None when IDNA
    reads it as another name (characters it drops or maps), or refuses it, or when a label mixes
    scripts (`_scripts_mixed`) or, under an ASCII top-level domain, is drawn as a Latin one
    (`_drawn_as_ascii`), in either form. Address literals ([192.0.2.1]) as they are."""
    if domain.startswith("[") or not domain:
        return domain
    try:
        spelled = idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    labels = spelled.split(".")
    if any(_scripts_mixed(label) for label in labels):
        return None
    if labels[-1].isascii() and any(_drawn_as_ascii(label) for label in labels[:-1]):
        return None  # Cyrillic `coca.test` reads as the Latin one; under a Cyrillic TLD it is a Russian name
    return spelled if spelled == domain or domain.isascii() else None


def email_clean(email: str) -> str:
    """The canonical (lowercase) form of an email address, or ValidationError `email_invalid`.

    An address with a character outside ASCII that lowercases into ASCII (the Kelvin sign K
    becomes k) is refused: it would become another address, and sign in as that member. So is
    one with a compatibility character (fullwidth letters, ligatures), which IDNA and mail systems
    read as its plain form (NFKC): owner@ with a fullwidth `a` in acme.test is owner@acme.test's
    mailbox. Decomposed accents (u + U+0308) are composed first (NFC): the same address.

    The domain is kept in the one spelling IDNA gives it (UTS 46, IDNA 2008): its A-label form
    (xn--bcher-kva.test) is written as the U-label (bücher.test), the same mailbox; and one that
    IDNA changes otherwise — characters it maps to nothing, such as a soft hyphen or a zero-width
    space, invisible wherever the address is shown — is refused: owner@ac<U+200B>me.test is
    owner@acme.test's mailbox, and would read as the owner in the console and the audit trail.

    Before the `@` only ASCII is taken, as Django's validator means to.

    A quoted local part is refused: `"owner"@acme.test` is owner@acme.test's mailbox (RFC 5321
    §4.1.2), and whatever else one quotes (spaces, `@`) no member's address needs."""
    email = email.strip()
    folds = email.startswith('"') or '"@' in email
    folds = folds or any(not char.isascii() and char.lower().isascii() for char in email)
    # A lone surrogate (a non-UTF-8 byte in a command's argument) is no character of an address.
    folds = folds or any("\ud800" <= char <= "\udfff" for char in email)
    email = unicodedata.normalize("NFC", email)  # one spelling of é, composed or not
    folds = folds or unicodedata.normalize("NFKC", email) != email
    email = email.lower()
    if not folds:
        local, _, domain = email.rpartition("@")
        # Django's validator means an ASCII local part, but its [a-z] under IGNORECASE takes four
        # letters more in Python: U+0130, U+0131, U+017F and U+212A. The dotless i (U+0131) passes
        # the folds above (it uppercases to I): adm\u0131n@ would read as admin@.
        spelled = domain_spelling(domain) if local.isascii() else None
        folds = spelled is None
        email = f"{local}@{spelled}" if spelled else email
    try:
        if folds or len(email) > 254:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise ValidationError("Enter a valid email address.", code="email_invalid") from None
    return email


def login_name(typed: str | None) -> str:
    """What a typed sign-in name names, for the form, the sign-in limits and the trail alike: the
    address as `email_clean` keeps it (every spelling of a member's address is that member), else
    the text stripped and lowercased, at most 254 characters. Spaces around it, or another
    spelling, made a new sign-in limit bucket each, and named no member in the trail."""
    text = (typed or "").strip()
    if len(text) <= 254:
        try:
            return email_clean(text)
        except ValidationError:
            pass
    return text.lower()[:254]


class InvitationTokens(PasswordResetTokenGenerator):
    """Django's password-reset tokens (one use: setting the password or signing in spends them),
    salted for invitations and bound to the member's role too: a link taken while the member
    was a viewer stops working once they are made an owner, whose link only owners hand out.

    Bound as well to `User.invited_at`, the moment the member's current link was issued (by
    `member_add`, `tenant_provision` and `member_invite_reissue`): each new issue makes every
    earlier link unusable, as an owner who sends a new link because the first went astray or
    leaked expects. A member without `invited_at` (invited before it was recorded) hashes as
    before, so those links keep working until they expire, the member joins or a new issue."""

    key_salt = "foundry.accounts.invitation"

    def _make_hash_value(self, user, timestamp) -> str:
        # The workspace too: an imported copy of it (same member ids, same `invited_at`) is not
        # opened by a link of the source, where killing it would not reach.
        issued = (
            "" if user.invited_at is None else f"{connection.schema_name}:{user.invited_at.astimezone(UTC).isoformat()}"
        )
        return f"{super()._make_hash_value(user, timestamp)}{user.role}{issued}"


invitation_tokens = InvitationTokens()


def member_invite_url(*, user: User, base_url: str) -> str:
    """The link of the member's current invitation issue (`User.invited_at`, set by `member_add`,
    `tenant_provision` and `member_invite_reissue`), where the member sets a password once.
    It hands out no new issue: the links it returns stay valid together until the next one."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = invitation_tokens.make_token(user)
    # Invitations are always for a tenant host, even when issued from the operator console.
    path = reverse("accounts:invite_accept", args=[uid, token], urlconf=settings.ROOT_URLCONF)
    return base_url.rstrip("/") + path


def _invitation_renew(member: User) -> None:
    """A new issue moment for the member's invitation (saved by the caller): strictly later than
    the last, even if the clock reads the same or stepped back — an equal moment would leave the
    earlier links valid."""
    issued = timezone.now()
    if member.invited_at is not None and issued <= member.invited_at:
        issued = member.invited_at + timedelta(microseconds=1)
    member.invited_at = issued


@transaction.atomic
def member_invite_reissue(*, actor: User, member: User, base_url: str, request: HttpRequest | None = None) -> str:
    """A fresh invitation link for a member who has not joined yet; the links issued before stop
    working. The link sets the member's password, so an owner's is reissued by owners only
    (whoever holds it signs in as that owner)."""
    _require(actor, Permission.MEMBERS_MANAGE)
    owners_hold()  # first, as a demotion of the actor takes them: the owners, then the member
    current = _required_now(actor, Permission.MEMBERS_MANAGE)
    member = _member_locked(member)
    if member.role == Role.OWNER:
        _require(current, Permission.OWNERS_MANAGE)
    if member.has_joined:
        raise ValidationError("This member has already joined.", code="invite_not_pending")
    _invitation_renew(member)
    member.save(update_fields=["invited_at"])
    audit_record(action="member.invite_issued", actor=actor, target=member, request=request)
    return member_invite_url(user=member, base_url=base_url)


def owner_invites_issue(*, actor: object, base_url: str, request: HttpRequest | None = None) -> list[tuple[str, str]]:
    """For the platform's operator, on a workspace just imported (the connection's schema): a new
    invitation link for each active owner who cannot sign in — an admin's export holds no
    password and they have no single sign-on identity — as (email, link). Only owners may send an
    owner a link, and none of them can sign in to do it. Each issue is audited."""
    links = []
    for owner in User.objects.select_for_update().filter(is_active=True, role=Role.OWNER).order_by("email", "id"):
        if owner.has_joined:
            continue
        _invitation_renew(owner)
        owner.save(update_fields=["invited_at"])
        audit_record(action="member.invite_issued", actor=actor, target=owner, request=request)
        links.append((owner.email, member_invite_url(user=owner, base_url=base_url)))
    return links


@transaction.atomic
def owner_invites_reissue(*, actor: str, base_url: str) -> list[tuple[str, str]]:
    """For the platform's operator (the connection's schema): new links for a workspace none of
    whose owners has joined — the link `create_tenant` printed was lost, or expired unused. Only
    an owner may send an owner a link, and none can sign in to. Refused (`owner_joined`) once
    one has: the workspace's owners send links themselves, and an operator holding a link could
    sign in as the owner it is for."""
    owners_hold()
    if any(owner.has_joined for owner in User.objects.filter(is_active=True, role=Role.OWNER)):
        raise ValidationError(
            "An owner of this workspace has joined: its owners send new links (Members → New invite link).",
            code="owner_joined",
        )
    return owner_invites_issue(actor=actor, base_url=base_url)


def _require(actor: User, permission: Permission) -> None:
    if not actor.has_permission(permission):
        raise PermissionDenied(f"Your role does not allow {permission}.")


def _required_now(actor, permission: Permission):
    """`actor` as it stands now (`actor_now`), refused unless that still allows `permission`."""
    current = actor_now(actor)
    _require(current, permission)
    return current


def allowed_now(actor, permission: Permission, scope: str | None = None):
    """`actor` as it stands now (`actor_now`: re-read and held to the transaction's end), refused
    (PermissionDenied) unless its role still allows `permission` and, a token, it holds `scope`.
    For the consequential act a request's start must not decide: a member demoted or removed, or
    a token revoked, while the request ran acted with what it read. Actors that are neither a
    member nor a token (a command, a platform operator, a service) are returned as given."""
    current = actor_now(actor)
    if isinstance(current, User) and current.is_staff:
        return current
    if hasattr(current, "has_permission") and not current.has_permission(permission):
        raise PermissionDenied(f"Your role does not allow {permission} (any more).")
    if scope is not None and hasattr(current, "has_scope") and not current.has_scope(scope):
        raise PermissionDenied(f"This token lacks the {scope!r} scope.")
    return current


def actor_now(actor):
    """The actor as it stands now, for a decision its request's start must not make: a member
    demoted or removed while their request ran (by another owner at the same moment) acted with
    the role it read. A member's row is re-read and locked (no key) until the transaction ends,
    and returned; an API token's row and its member's likewise, the token returned as it acts.
    PermissionDenied when the member was removed or deactivated, or the token revoked,
    meanwhile. Other actors (a platform service token, a command) are returned as given. Lock
    order: after `owners_hold`, where a change takes it, as a removal or demotion takes the
    owners and then the member."""
    if isinstance(actor, User) and actor.is_staff:
        return actor  # a platform operator: a user of the public schema, never a member (import clears is_staff)
    if isinstance(actor, User):
        current = User.objects.select_for_update(no_key=True).filter(pk=actor.pk, is_active=True).first()
        if current is None:
            raise PermissionDenied("You are no longer a member of this workspace.")
        return current
    token = getattr(actor, "token", None)
    if isinstance(token, ApiToken):
        member = token.issued_by_id
        held = User.objects.select_for_update(no_key=True).filter(pk=member, is_active=True).first() if member else None
        if member is not None and held is None:
            raise PermissionDenied("The member who issued this token is no longer in the workspace.")
        current = ApiToken.objects.select_for_update(no_key=True).filter(pk=token.pk).first()
        if current is None or not current.is_usable:
            raise PermissionDenied("This token is no longer valid.")
    return actor


def owners_hold() -> None:
    """Lock the workspace's active owners, in id order, until the transaction ends. Every change
    that could leave the workspace without an owner (demoting, removing, erasing one) takes this
    first, before the member's own row, so two at once count the owners one after the other
    instead of each seeing the other remain."""
    list(User.objects.select_for_update().filter(role=Role.OWNER, is_active=True).order_by("pk").values_list("pk"))


def owner_kept(member: User) -> None:
    """After `owners_hold`: refuse (last_owner) to take `member` away if no other owner could act:
    one invited who never joined cannot sign in, and only an owner may send them a new link. Nor
    (break_glass_owner) the break-glass owner while single sign-on is required: without them no
    one could sign in while the identity provider is down."""
    if member.role == Role.OWNER and _owners_remaining_without(member) == 0:
        raise ValidationError("A workspace needs at least one owner who has joined.", code="last_owner")
    if member.role == Role.OWNER and _break_glass_owner(member):
        raise ValidationError(
            f"{member.email} is the break-glass owner, the one password way in while single sign-on is "
            "required: name another (Settings → Single sign-on) or stop requiring it first.",
            code="break_glass_owner",
        )


def _break_glass_owner(member: User) -> bool:
    """`member` is the owner who may still use a password while the workspace requires SSO."""
    from apps.identity.models import SsoConfiguration

    return SsoConfiguration.objects.filter(sso_required=True, break_glass_email=member.email).exists()


def _owners_remaining_without(user: User) -> int:
    """The other active owners who have joined (User.has_joined, in SQL: a usable password, or a
    sign-in already made, as single sign-on members have no password) and can sign in now: with
    no single sign-on configured, only those with a password; with it, those the settings still
    let in (`sign_in_left`: not one whose identity is at an issuer left behind, whose address is
    outside the allowed domains, or whose password single sign-on made useless)."""
    from apps.identity.models import SsoConfiguration

    return owners_signing_in(SsoConfiguration.objects.first(), without=user)


def owners_signing_in(config: object, *, without: User | None = None) -> int:
    """The active owners (but `without`) who have joined and could sign in under the SSO settings
    `config` (None: none; saved or not): `_owners_remaining_without`'s count."""
    from apps.identity.services import sign_in_left

    owners = User.objects.filter(role=Role.OWNER, is_active=True)
    if without is not None:
        owners = owners.exclude(pk=without.pk)
    if config is None:
        return owners.exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX).count()
    joined = owners.exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX, last_login__isnull=True)
    return sum(1 for owner in joined if sign_in_left(owner, config))


@transaction.atomic
def member_add(*, actor: User, email: str, role: str, full_name: str = "", request: HttpRequest | None = None) -> User:
    _require(actor, Permission.MEMBERS_MANAGE)
    current = _required_now(actor, Permission.MEMBERS_MANAGE)
    errors: dict[str, ValidationError] = {}
    try:
        email = email_clean(email)
    except ValidationError as e:
        errors["email"] = e
    else:
        # A first SSO sign-in of the same address waits, then links this member.
        xact_lock(SSO_EMAIL_LOCK.format(schema=connection.schema_name, email=email))
        if User.objects.filter(email=email).exists():
            errors["email"] = ValidationError("That person is already a member.", code="member_exists")
    if role not in Role.values:
        errors["role"] = ValidationError(f"Unknown role “{role}”.", code="role_invalid")
    if len(full_name) > 200:
        errors["full_name"] = ValidationError("At most 200 characters.", code="name_too_long")
    elif not text_readable(full_name):
        errors["full_name"] = ValidationError(
            "A name holds no control or text-direction characters.", code="name_invalid"
        )
    elif full_name.strip() and not text_visible(full_name):
        errors["full_name"] = ValidationError("A name shows at least one character.", code="name_invalid")
    if errors:
        raise ValidationError(errors)
    if role == Role.OWNER:
        _require(current, Permission.OWNERS_MANAGE)
    try:
        with transaction.atomic():  # the same address added at the same moment by another request
            member = User.objects.create_user(
                email, None, role=role, full_name=full_name.strip(), invited_at=timezone.now()
            )
    except IntegrityError:
        raise ValidationError(
            {"email": ValidationError("That person is already a member.", code="member_exists")}
        ) from None
    audit_record(action="member.added", actor=actor, target=member, data={"role": role}, request=request)
    return member


def _member_locked(member: User) -> User:
    """The member's row, locked; 404 when it was removed meanwhile (by another request)."""
    locked = User.objects.select_for_update().filter(pk=member.pk).first()
    if locked is None:
        raise Http404("There is no such member.")
    return locked


@transaction.atomic
def member_role_change(*, actor: User, member: User, role: str, request: HttpRequest | None = None) -> User:
    _require(actor, Permission.MEMBERS_MANAGE)
    if role not in Role.values:
        raise ValidationError({"role": ValidationError(f"Unknown role “{role}”.", code="role_invalid")})
    owners_hold()
    current = _required_now(actor, Permission.MEMBERS_MANAGE)
    member = _member_locked(member)
    if member.role == role:
        return member
    if Role.OWNER in (member.role, role):
        _require(current, Permission.OWNERS_MANAGE)
    owner_kept(member)
    previous = member.role
    member.role = role
    fields = ["role"]
    if not member.has_joined:
        # The role change ends the links sent so far (their token holds the role); a new issue
        # moment keeps a change back to the old role from bringing them back.
        _invitation_renew(member)
        fields.append("invited_at")
    member.save(update_fields=fields)
    audit_record(
        action="member.role_changed",
        actor=actor,
        target=member,
        data={"from": previous, "to": role},
        request=request,
    )
    token_revoke_issued_by(actor=actor, member=member, reason=RevokedReason.ISSUER_DEMOTED, role=role, request=request)
    return member


@transaction.atomic
def member_remove(*, actor: User, member: User, request: HttpRequest | None = None) -> None:
    _require(actor, Permission.MEMBERS_MANAGE)
    owners_hold()
    current = _required_now(actor, Permission.MEMBERS_MANAGE)
    member = _member_locked(member)
    if member.pk == acting_member_id(actor):
        raise ValidationError("You cannot remove yourself.", code="remove_self")
    if member.role == Role.OWNER:
        _require(current, Permission.OWNERS_MANAGE)
    owner_kept(member)
    audit_record(action="member.removed", actor=actor, target=member, data={"role": member.role}, request=request)
    token_revoke_issued_by(actor=actor, member=member, reason=RevokedReason.ISSUER_REMOVED, request=request)
    # Their sessions go with the row (the auth middleware would find no user behind them, but an
    # SSO sign-in's keeps the provider's ID token, which names them, until it expires).
    sessions_end(lambda data: data.get(SESSION_KEY) == str(member.pk))
    member.delete()


def member_signing_in(user: User) -> bool:
    """Inside the sign-in's transaction, before the session is made: whether the sign-in whose
    credentials were just checked still stands, what it stands on held until it commits. Each
    change that ends sessions waits for a sign-in that got here first, and one that got here
    first is found done, the sign-in refused:
    - the workspace active (its row, shared): a suspension or deletion ends every session;
    - its sign-in rules (the SSO configuration's lock, shared): a change ends the sessions it
      refuses, so they are judged again here, as they stand now, by the backend that checked
      the credentials (passwords no longer allowed, another provider, narrower domains);
    - the member there and active (their row): a removal or a deactivation."""
    from apps.identity.oidc import sso_config_forget
    from apps.tenants.models import Tenant

    if connection.schema_name != get_public_schema_name():  # not an operator, on the platform's host
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM public.tenants_tenant WHERE id = %s FOR SHARE", [connection.tenant.pk])
            row = cursor.fetchone()
        if row is None or row[0] != Tenant.Status.ACTIVE:
            return False
        xact_lock_shared(SSO_RULES_LOCK.format(schema=connection.schema_name))
    if not User.objects.select_for_update().filter(pk=user.pk, is_active=True).exists():
        return False
    sso_config_forget()  # the rules as they stand, not as this process last read them
    backend = getattr(user, "backend", None)
    return backend in settings.AUTHENTICATION_BACKENDS and load_backend(backend).get_user(user.pk) is not None


def acting_member_id(actor):
    """The member an actor acts as: a signed-in member (or their identity provider's token)
    themselves, an API token the member who issued it (it acts as them, docs/roles.md)."""
    token = getattr(actor, "token", None)
    if isinstance(token, ApiToken):
        return token.issued_by_id
    return actor.pk


def member_count() -> int:
    return User.objects.filter(is_active=True).count()


def workspace_with_active_members(tenant_id: int):
    """The workspace's Tenant row with `active_members` counted live in the same query (its
    `member_count` field is the operators' periodically refreshed copy)."""
    from apps.tenants.models import Tenant

    # Grouped by the one value is_active has here: a single row holding the count (none: 0).
    active = User.objects.filter(is_active=True).order_by().values("is_active").annotate(n=Count("pk")).values("n")
    return Tenant.objects.annotate(active_members=Coalesce(Subquery(active), 0)).get(pk=tenant_id)
