import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from foundry.polls import POLL_HEADER

SESSION_SCHEMA_KEY = "foundry_schema"
SESSION_ACTIVE_KEY = "foundry_active_at"  # when its person last did something (epoch seconds)
ACTIVE_EVERY = 60  # seconds: the session is saved at most this often for it (a tenth of the limit, if less)


class SessionTenantBindingMiddleware:
    """A session is valid only in the schema that created it.

    Sessions are stored per schema, so a cookie replayed on another host normally finds
    nothing; this is the second fence, for a session key that does exist elsewhere.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if session.get(SESSION_KEY) and session.get(SESSION_SCHEMA_KEY) != connection.schema_name:
            session.flush()
            request.user = AnonymousUser()
        return self.get_response(request)


class SessionIdleMiddleware:
    """A console session unused for FOUNDRY_SESSION_IDLE_SECONDS ends (0: never), besides ending
    FOUNDRY_SESSION_AGE after its sign-in: a console left open on an unattended machine is signed
    out. What counts as use is a request of the person's; the console's own polls
    (`X-Foundry-Poll`, foundry/polls.py: a live run's page) are not, so a page left open does not
    keep its session alive. Use is saved at most every `ACTIVE_EVERY` seconds (a tenth of the
    limit, if less), so the session ends between the limit and that much later after its last
    use, never before. The ending is recorded once (`auth.logout`, reason `idle`: by the request
    whose delete of the session's row removed it; requests arriving together all find it idle),
    and the request goes on signed out (the sign-in page, or HX-Redirect to it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        idle = settings.FOUNDRY_SESSION_IDLE_SECONDS
        if idle and request.user.is_authenticated and request.session.get(SESSION_KEY):
            now = int(time.time())
            every = max(1, min(ACTIVE_EVERY, idle // 10))
            active = request.session.get(SESSION_ACTIVE_KEY)
            if isinstance(active, int) and now - active > idle + every:
                self._end(request, idle)
            elif request.headers.get(POLL_HEADER) != "1" and (not isinstance(active, int) or now - active >= every):
                request.session[SESSION_ACTIVE_KEY] = now  # one made before this setting: counted from now
        return self.get_response(request)

    @staticmethod
    def _end(request, idle: int) -> None:
        from apps.audit.services import audit_record

        store = request.session
        ended = store.get_model_class().objects.filter(session_key=store.session_key).delete()[0]
        if ended:
            audit_record(action="auth.logout", data={"reason": "idle", "idle_seconds": idle}, request=request)
        logout(request)
        messages.info(request, f"You were signed out after {max(idle // 60, 1)} minute(s) without using the console.")
