from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from apps.accounts.permissions import Permission, Role, role_has_permission


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    RUN = "run", "Run agents"
    ADMIN = "admin", "Administer"


class RevokedReason(models.TextChoices):
    """Why a token was revoked without anyone revoking it by hand (by hand: blank)."""

    ISSUER_REMOVED = "issuer_removed", "Issuer removed"
    ISSUER_DEMOTED = "issuer_demoted", "Issuer's role lowered"
    ISSUING_TOKEN_REVOKED = "token_revoked", "Issuing token revoked"
    ISSUER_SHUT_OUT = "issuer_shut_out", "Issuer can no longer sign in"


class ApiToken(models.Model):
    """A bearer token of one tenant (it lives in the tenant's schema, so it means nothing on
    another tenant's host). Only a SHA-256 of the secret is stored; the prefix identifies it.
    `issued_by` is the member whose standing the token rests on: removing them, or lowering
    their role below the token's, or single sign-on settings that leave them no way to sign in
    (apps/identity/services.py), revokes it (`token_revoke_issued_by`). `created_by` only names
    whoever issued it, for display."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    role = models.CharField(max_length=20, choices=Role.choices)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices))
    created_by = models.CharField(max_length=255, blank=True)
    issued_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="issued_tokens"
    )
    # The token that issued this one (an API request with a token): revoked with it (token_revoke).
    issued_by_token = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="issued_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, choices=RevokedReason.choices, blank=True, db_default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class TokenPrincipal:
    """Who a request authenticated with a token acts as: the token's role, narrowed by scopes."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, token: ApiToken):
        self.token = token
        self.pk = None
        self.role = token.role
        self.email = f"token:{token.prefix}"

    def __str__(self) -> str:
        return f"token:{token_label(self.token)}"

    def has_permission(self, permission: Permission) -> bool:
        return role_has_permission(self.role, permission)

    def has_scope(self, scope: str) -> bool:
        return scope in self.token.scopes


def token_label(token: ApiToken) -> str:
    return f"{token.prefix} {token.name}"


class IdempotencyKey(models.Model):
    """A write to the API sent with an `Idempotency-Key` header (apps/tokens/idempotency.py): the
    first request's answer, kept so that a retry of it gets that answer instead of a second
    effect. One per caller (`principal`, as the audit trail names them) and key; written in the
    transaction of the write it answers, so the two commit together or not at all. The answer
    is encrypted (it may hold a secret shown once, a new token's); kept FOUNDRY_IDEMPOTENCY_HOURS."""

    principal = models.CharField(max_length=120)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # keyed hash of the method, path, query and body
    # The caller's role and scopes when it was answered: a replay goes only to the caller standing
    # so still (a service's own checks, an owner's rule say, are not run again for a replay).
    standing = models.CharField(max_length=200, blank=True, db_default="")
    created_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    location = models.CharField(max_length=2000, blank=True)
    body_encrypted = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_key_once")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
