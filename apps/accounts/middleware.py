from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.db import connection

SESSION_SCHEMA_KEY = "foundry_schema"


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
