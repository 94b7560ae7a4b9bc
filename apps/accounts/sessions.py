"""The session store (SESSION_ENGINE), and ending a workspace's open sessions (stored per schema;
their data is signed, not searchable: each is decoded)."""

import re
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import schema_context

# What Django makes a key of (32 of [a-z0-9]), in the column's 40 characters.
_KEY = re.compile(r"[a-z0-9]{8,40}")


class SessionStore(db.SessionStore):
    """Django's database store, taking only a key it could have made: Django asks no more than
    eight characters, and a cookie `sessionid="\\000..."` (the parser decodes the octal escape)
    reached the query as a NUL, which PostgreSQL text refuses: a 500 on every page. Any other
    key is no session, as an unknown one is."""

    def _validate_session_key(self, key):
        return isinstance(key, str) and _KEY.fullmatch(key) is not None


def sessions_end(ends: Callable[[dict], bool]) -> int:
    """Delete the unexpired sessions whose decoded data `ends`; how many (an expired one opens nothing)."""
    live = Session.objects.filter(expire_date__gt=timezone.now())
    ended = [session.pk for session in live.iterator() if ends(session.get_decoded())]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def sessions_all_end(schema: str) -> int:
    """Delete every session of the workspace `schema` (suspended, or scheduled for deletion: who
    comes back once it is active again signs in again); how many."""
    with schema_context(schema):
        deleted, _ = Session.objects.all().delete()
    return deleted


def _refused(data: dict) -> bool:
    user_id, backend = data.get(SESSION_KEY), data.get(BACKEND_SESSION_KEY)
    if user_id is None:
        return False
    return backend not in settings.AUTHENTICATION_BACKENDS or load_backend(backend).get_user(user_id) is None


def sessions_refused_end(request: HttpRequest | None = None) -> int:
    """End the signed-in sessions the workspace's sign-in rules no longer admit, as their
    backend judges them at every request (SSO disabled or moved to another provider, a member's
    domain no longer allowed, passwords no longer allowed). Called where those rules change: a
    session refused is then gone, not merely refused until the rule is changed back. When it is
    `request`'s own, the request goes on signed out (its session saved afresh, not into the row
    just deleted)."""
    ended = sessions_end(_refused)
    session = getattr(request, "session", None)
    if session is not None and session.session_key and not Session.objects.filter(pk=session.session_key).exists():
        session.flush()
        request.user = AnonymousUser()
    return ended
