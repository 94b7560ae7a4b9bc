"""How long a console session lives (README "Configuration": `FOUNDRY_SESSION_AGE`, "session
lifetime, seconds", 8 hours by default; OWASP ASVS 3.3.2: re-authentication at least every
12 hours even while the session is actively used)."""

import datetime
import types

import pytest
from django.contrib.sessions.backends import base, db
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD, tenant_user


@pytest.fixture
def session_clock(monkeypatch):
    """Moves the clock the session store reads (expiry written on save, and checked on load)."""
    clock = types.SimpleNamespace(offset=datetime.timedelta(0))
    shifted = types.SimpleNamespace(now=lambda: timezone.now() + clock.offset)
    monkeypatch.setattr(base, "timezone", shifted)
    monkeypatch.setattr(db, "timezone", shifted)
    return clock


def test_activity_does_not_stretch_a_session_past_its_lifetime(acme, settings, session_clock):
    """A session lives FOUNDRY_SESSION_AGE from sign-in. Every request that writes to the session
    (any console action answered with a message: a role changed, a member added) used to save it
    with a new expiry of now + FOUNDRY_SESSION_AGE, so a member who acted at least once per
    lifetime stayed signed in for ever on one sign-in (a stolen cookie, kept busy, never died):
    the lifetime is neither an absolute one nor a real idle timeout (reading pages does not
    extend it)."""
    age = datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 302
    developer = tenant_user(acme, "developer@acme.test")

    session_clock.offset = age - datetime.timedelta(hours=1)  # one hour before the lifetime ends
    changed = client.post(f"/members/{developer.pk}/role/", {"role": "operator"})
    assert changed.status_code == 302  # done, with a "now Operator" message kept in the session

    session_clock.offset = age + datetime.timedelta(hours=1)  # the lifetime has passed
    response = client.get("/members/")
    assert response.status_code == 302 and response["Location"].startswith("/login/"), (
        "a session signed in more than FOUNDRY_SESSION_AGE ago still authenticates: its expiry was "
        "pushed back by a request that wrote to it"
    )
