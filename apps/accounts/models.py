from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone

from apps.accounts.permissions import Permission, Role, role_has_permission


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A person who signs in. In a tenant schema: a member of that tenant, with one role.
    In the public schema: a platform operator (`is_staff`)."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # When the member's current invitation link was issued: part of its token, so each new issue
    # makes the earlier links unusable (apps.accounts.services.InvitationTokens).
    invited_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    @property
    def has_joined(self) -> bool:
        """False while the member has not yet accepted the invitation: no password set and never
        signed in (a member who signs in with single sign-on has no password, yet has joined)."""
        return self.has_usable_password() or self.last_login is not None

    def has_permission(self, permission: Permission) -> bool:
        return self.is_active and role_has_permission(self.role, permission)
