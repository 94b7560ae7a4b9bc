"""Ending this workspace's open sessions (stored per schema; their data is signed, not
searchable: each is decoded)."""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.utils import timezone


def sessions_end(ends: Callable[[dict], bool]) -> int:
    """Delete the unexpired sessions whose decoded data `ends`; how many (an expired one opens nothing)."""
    live = Session.objects.filter(expire_date__gt=timezone.now())
    ended = [session.pk for session in live.iterator() if ends(session.get_decoded())]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


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
