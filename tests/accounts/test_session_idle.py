"""A console session unused for FOUNDRY_SESSION_IDLE_SECONDS ends (apps/accounts/middleware.py
SessionIdleMiddleware): before, a session lasted FOUNDRY_SESSION_AGE (8 h) after its sign-in
however long it lay unused, and a console left open on an unattended machine stayed signed in.
The console's own polls (a live run's page) are no use of it."""

import time

import pytest
from django_tenants.utils import schema_context

from apps.accounts.middleware import SESSION_ACTIVE_KEY
from tests.conftest import audit_events, client_for

POLL = {"HTTP_X_FOUNDRY_POLL": "1", "HTTP_HX_REQUEST": "true"}


def active_at(client, tenant, when: int | str | None) -> None:
    """The session's last use, as stored (None: a session made before the setting)."""
    with schema_context(tenant.schema_name):
        session = client.session
        if when is None:
            session.pop(SESSION_ACTIVE_KEY, None)
        else:
            session[SESSION_ACTIVE_KEY] = when
        session.save()


@pytest.fixture
def owner(acme, settings):
    """The owner signed in, a 30-minute idle limit, one page seen."""
    settings.FOUNDRY_SESSION_IDLE_SECONDS = 1800
    client = client_for(acme, "owner@acme.test")
    assert client.get("/runs/").status_code == 200
    return client


def stored_active_at(client, tenant) -> int | None:
    with schema_context(tenant.schema_name):
        return client.session.get(SESSION_ACTIVE_KEY)


def test_a_session_unused_past_the_idle_limit_is_signed_out_and_recorded(acme, owner):
    client = owner
    active_at(client, acme, int(time.time()) - 1800 - 61)  # past the limit and the saving interval
    response = client.get("/runs/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    [event] = audit_events("acme", action="auth.logout")
    assert event.data == {"reason": "idle", "idle_seconds": 1800}
    said = client.get(response["Location"]).content.decode()
    assert "You were signed out after 30 minute(s) without using the console." in said
    assert client.get("/runs/").status_code == 302  # the session is gone, not just this answer


def test_a_poll_is_refused_to_sign_in_as_a_whole_page(acme, owner):
    client = owner
    active_at(client, acme, int(time.time()) - 7200)
    response = client.get("/runs/", **POLL)
    assert "HX-Redirect" in response and response["HX-Redirect"].startswith("/login/")


def test_polls_do_not_keep_a_session_alive_and_use_does(acme, owner):
    client = owner
    before = int(time.time()) - 1000
    active_at(client, acme, before)
    assert client.get("/runs/", **POLL).status_code == 200
    assert stored_active_at(client, acme) == before
    client.get("/runs/")
    assert stored_active_at(client, acme) >= int(time.time()) - 5


def test_use_is_saved_at_most_once_a_minute(acme, owner):
    client = owner
    recent = int(time.time()) - 30
    active_at(client, acme, recent)
    client.get("/runs/")
    assert stored_active_at(client, acme) == recent


@pytest.mark.parametrize(
    ("idle", "stored"), [(0, -(10**6)), (1800, None), (1800, "yesterday")], ids=["off", "before", "not-a-time"]
)
def test_a_session_from_before_the_setting_starts_counting_and_0_never_ends_one(acme, settings, idle, stored):
    """A session made before the setting (no time stored), or holding a value no request of
    this version writes, counts from now; a limit of 0 ends none."""
    settings.FOUNDRY_SESSION_IDLE_SECONDS = idle
    client = client_for(acme, "owner@acme.test")
    active_at(client, acme, int(time.time()) + stored if isinstance(stored, int) else stored)
    assert client.get("/runs/").status_code == 200
    assert client.get("/runs/").status_code == 200
    assert audit_events("acme", action="auth.logout") == []


def test_the_operator_console_ends_idle_sessions_too(operator_client, settings):
    settings.FOUNDRY_SESSION_IDLE_SECONDS = 1800
    assert operator_client.get("/").status_code == 200
    with schema_context("public"):
        session = operator_client.session
        session[SESSION_ACTIVE_KEY] = int(time.time()) - 3600
        session.save()
    response = operator_client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]
