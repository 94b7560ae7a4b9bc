"""Refusals an unauthenticated client can repeat at will are audited once a minute per reason
and address, not one chained, undeletable event per request (docs/sso.md, docs/limits.md):
answers to no sign-in started here on /sso/callback/, and throttled sign-ins."""

from django.test import Client

from tests.conftest import audit_events


def test_forged_sso_callbacks_are_audited_once_a_minute_per_reason_and_address(acme):
    client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="203.0.113.9")
    for n in range(20):
        response = client.get(f"/sso/callback/?state=forged{n}&code=x")
        assert response.status_code == 403
    failed = audit_events("acme", action="auth.login.failed")
    assert [e.data["reason"] for e in failed] == ["sso_not_configured"]
    # Another address is another client: its first refusal is recorded too.
    Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="203.0.113.99").get("/sso/callback/?state=x&code=x")
    assert len(audit_events("acme", action="auth.login.failed")) == 2


def test_throttled_sign_ins_are_audited_once_a_minute_per_account_and_address(acme, settings):
    settings.FOUNDRY_LOGIN_RATE_PER_ACCOUNT = "2/m"
    client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR="203.0.113.10")
    statuses = [
        client.post("/login/", {"username": "viewer@acme.test", "password": "no"}).status_code for _ in range(20)
    ]
    assert statuses.count(429) == 18
    assert len(audit_events("acme", action="auth.login.throttled")) == 1
    assert len(audit_events("acme", action="auth.login.failed")) == 2  # the attempts admitted, each
    client.post("/login/", {"username": "admin@acme.test", "password": "no"})
    client.post("/login/", {"username": "admin@acme.test", "password": "no"})
    client.post("/login/", {"username": "admin@acme.test", "password": "no"})  # throttled: another account
    assert len(audit_events("acme", action="auth.login.throttled")) == 2
