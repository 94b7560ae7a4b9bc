from django.contrib.auth.signals import user_logged_in
from django.db import connection
from django.dispatch import receiver

from apps.accounts.middleware import SESSION_SCHEMA_KEY


@receiver(user_logged_in)
def session_bind_to_schema(sender, request, user, **kwargs) -> None:
    # Every sign-in path (password, invitation, SSO later) binds the session to this schema.
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_SCHEMA_KEY] = connection.schema_name
