"""The idle sign-out's edges (apps/accounts/middleware.py SessionIdleMiddleware) and the Data
export page's failing of lost exports (apps/lifecycle/exports.py exports_lost_fail), against
real PostgreSQL, Redis and (for the concurrency one) the gunicorn live server."""

import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

from django.conf import settings as django_settings
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.middleware import SESSION_ACTIVE_KEY, SESSION_SCHEMA_KEY
from tests.conftest import PASSWORD, audit_events, client_for, host_of
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import waiting_run


def _active_at(client, schema: str, when: int) -> None:
    with schema_context(schema):
        session = client.session
        session[SESSION_ACTIVE_KEY] = when
        session.save()


def test_a_member_using_the_console_is_not_signed_out_before_the_idle_limit(acme, settings):
    """Use is saved at most every so often, and the idle test measured from the saved time: a
    member was signed out up to that interval before the limit after their last use (with a
    60 s limit, 3 s after a request). Now the test allows for the interval: never early."""
    settings.FOUNDRY_SESSION_IDLE_SECONDS = 60
    client = client_for(acme, "owner@acme.test")
    _active_at(client, "acme", int(time.time()) - 58)  # last stored use 58 s ago
    assert client.get("/runs/").status_code == 200  # used now (not stored: < 60 s since)
    time.sleep(3)
    response = client.get("/runs/")  # 3 s after the last use, with a 60 s limit
    assert response.status_code == 200, (
        f"signed out {response.status_code} {response.get('Location')} 3 s after a use, limit 60 s"
    )


def _stale_session(tenant, email: str) -> str:
    """A signed-in session of `email`, committed, last used two hours ago (as sign-in makes one)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from apps.accounts.models import User

    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    with schema_context(tenant.schema_name):
        user = User.objects.get(email=email)
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "apps.accounts.backends.PasswordBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session[SESSION_SCHEMA_KEY] = tenant.schema_name
        session[SESSION_ACTIVE_KEY] = int(time.time()) - 7200
        session.create()
        return session.session_key


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_an_idle_session_ending_is_recorded_once_under_concurrent_requests(live_port, fresh_tenant, django_db_blocker):
    """An idle session's next requests arriving together (tabs restored at once, two open run
    pages polling) each found it idle and each wrote `auth.logout` reason idle (4 events for 6
    requests). Now the request whose delete of the session's row removed it records it: once."""
    with django_db_blocker.unblock():
        key = _stale_session(fresh_tenant, f"owner@{fresh_tenant.slug}.test")
    opener = urllib.request.build_opener(_NoRedirect)

    def get(_):
        request = urllib.request.Request(
            f"http://127.0.0.1:{live_port}/runs/",
            headers={"Host": f"{fresh_tenant.slug}.localhost:{live_port}", "Cookie": f"sessionid={key}"},
        )
        try:
            return opener.open(request, timeout=20).status
        except urllib.error.HTTPError as e:
            return e.code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(get, range(6)))
    assert statuses == [302] * 6, statuses  # every one signed out: right
    with django_db_blocker.unblock():
        events = audit_events(fresh_tenant.schema_name, action="auth.logout", data={"reason": "idle"})
    assert len(events) == 1, f"{len(events)} auth.logout idle events for one session ended"


def test_a_form_posted_after_an_idle_sign_out_leads_back_to_a_usable_page(acme, settings):
    """A member leaves a run's approval form open past the idle limit, then submits it: the POST
    is signed out (right), but was sent on to /login/?next=/runs/<id>/decide/ — a POST-only URL —
    so after signing in again they landed on a 405 page. Now `next` is the form's page, and the
    sign-in page says why they were signed out."""
    settings.FOUNDRY_SESSION_IDLE_SECONDS = 1800
    run = waiting_run(acme, deploy(acme, FINANCE, TRIAGE))
    client = Client(HTTP_HOST=host_of(acme), enforce_csrf_checks=True)
    client.get("/login/")
    signed_in = client.post(
        "/login/",
        {"username": "owner@acme.test", "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )
    assert signed_in.status_code == 302
    page = client.get(f"/runs/{run.pk}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    _active_at(client, "acme", int(time.time()) - 3600)  # the form left open an hour

    posted = client.post(
        f"/runs/{run.pk}/decide/",
        {"csrfmiddlewaretoken": token, "step": 2, "decision": "approve", "comment": "ok", "requested_at": ""},
        HTTP_REFERER=f"http://{host_of(acme)}/runs/{run.pk}/",
    )
    assert posted.status_code == 302 and posted["Location"].startswith("/login/")  # signed out: right
    again = client.post(
        posted["Location"],
        {"username": "owner@acme.test", "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )
    assert again.status_code == 302
    landed = client.get(again["Location"])
    assert landed.status_code == 200, f"after signing in again: {again['Location']} answered {landed.status_code}"
    assert again["Location"] == f"/runs/{run.pk}/"
