import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import connection
from django.dispatch import receiver
from django.utils import timezone

from apps.accounts.middleware import SESSION_ACTIVE_KEY, SESSION_SCHEMA_KEY


@receiver(user_logged_in)
def session_bind_to_schema(sender, request, user, **kwargs) -> None:
    # Every sign-in path (password, invitation, SSO later) binds the session to this schema, and
    # sets when it ends: FOUNDRY_SESSION_AGE after the sign-in, however active it is since (a
    # rolling expiry moved at every save — each console message is one — never ended a busy one).
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_SCHEMA_KEY] = connection.schema_name
        request.session[SESSION_ACTIVE_KEY] = int(time.time())
        request.session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))
