"""refusals audited "once a minute per ... client address" must treat an IPv6 client
as its /64, as the sign-in limits do (docs/limits.md: "An IPv6 client address counts as its /64
(one client holds a whole /64, and could otherwise take a new address ... for each attempt)").
Otherwise one IPv6 client appends one undeletable, chained audit event per request by taking a
new address of its own /64 for each, which the once-a-minute window exists to stop."""

from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tokens.services import token_issue
from tests.conftest import audit_events


def test_a_wrong_token_secret_from_one_ipv6_64_is_audited_once_a_minute(acme):
    """docs/sso.md ("Each is recorded once a minute per token (or subject), reason and client
    address: a script retrying a dead token, or someone trying secrets, does not append an event
    per request"). Twenty tries of secrets for one real token, each from another address of the
    same /64 (one client), should append one `auth.token.rejected` event, as twenty from one IPv4
    address do; today each address opens its own window (apps/audit/services.py
    `audit_first_in_window` keys by raw REMOTE_ADDR), so twenty events are appended."""
    with schema_context(acme.schema_name):
        owner = User.objects.get(email="owner@acme.test")
        plaintext = token_issue(actor=owner, name="ipv6", role="viewer", scopes=["read"]).plaintext
    wrong = plaintext[:-4] + ("0000" if not plaintext.endswith("0000") else "1111")
    for host in range(1, 21):
        client = Client(
            HTTP_HOST="acme.localhost", REMOTE_ADDR=f"2001:db8:7:9::{host:x}", HTTP_AUTHORIZATION=f"Bearer {wrong}"
        )
        assert client.get("/api/v1/members").status_code == 401
    rejected = audit_events("acme", action="auth.token.rejected", data={"reason": "wrong_secret"})
    assert len(rejected) == 1


def test_forged_sso_callbacks_from_one_ipv6_64_are_audited_once_a_minute(acme):
    """docs/sso.md: an answer to no sign-in started in that browser ("a forged or replayed state,
    anyone can send it") is audited "once a minute per reason and client address". Twenty forged
    callbacks, each from another address of one /64, should append one `auth.login.failed`
    event, as from one IPv4 address (tests/identity/test_refusal_repeats.py); today twenty."""
    for host in range(1, 21):
        client = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"2001:db8:7:a::{host:x}")
        assert client.get(f"/sso/callback/?state=forged{host}&code=x").status_code == 403
    assert len(audit_events("acme", action="auth.login.failed")) == 1
