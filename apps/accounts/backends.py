"""Password sign-in, refused where the workspace requires single sign-on.

With "SSO required", only the break-glass owner named in the SSO configuration may use a
password; everyone else signs in through the identity provider (apps/identity/oidc.py). This
also ends password sessions already open when the setting is switched on: Django re-checks
`user_can_authenticate` on every request through `get_user`."""

from django.contrib.auth.backends import ModelBackend

from apps.accounts.permissions import Role


def password_allowed(user) -> bool:
    from apps.identity.oidc import sso_config

    config = sso_config()
    if config is None or not config.sso_required:
        return True
    return user.email == config.break_glass_email and user.role == Role.OWNER


class PasswordBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and password_allowed(user)
