"""Removing or demoting a member revokes each token they issued once, with one `token.revoked`
event (docs/roles.md), also a token one of their tokens minted: it is theirs and the offspring of
another of theirs, and is revoked (and its event recorded) as theirs, not again as offspring."""

from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import audit_events, client_for, tenant_user


def _mint_child(acme, parent: str, role: str = "admin") -> str:
    minted = api(acme, parent).post(
        "/api/v1/tokens",
        {"name": "child", "role": role, "scopes": ["read", "admin"]},
        content_type="application/json",
    )
    assert minted.status_code == 201, minted.content
    return minted.json()["token"]


def _revocations_of(acme, plaintext: str) -> list:
    with schema_context(acme.schema_name):
        token = ApiToken.objects.get(prefix=plaintext[3:15])
    return [e for e in audit_events(acme.schema_name, action="token.revoked") if e.target_id == str(token.pk)]


def test_removing_a_member_records_one_revocation_per_token_even_for_a_token_minted_by_another(acme):
    """admin@acme's token mints a child over the API (both issued by admin@acme); the owner removes
    admin@acme: one event each."""
    admin = tenant_user(acme, "admin@acme.test")
    with schema_context(acme.schema_name):
        parent = token_issue(actor=admin, name="parent", role="admin", scopes=["read", "admin"]).plaintext
    child = _mint_child(acme, parent)

    removed = client_for(acme, "owner@acme.test").post(f"/members/{admin.pk}/remove/")
    assert removed.status_code in (200, 302), removed.content

    assert len(_revocations_of(acme, parent)) == 1
    events = _revocations_of(acme, child)
    assert len(events) == 1, f"the child token has {len(events)} token.revoked events: {[e.data for e in events]}"


def test_demoting_a_member_records_one_revocation_for_a_child_that_outranks_the_new_role(acme):
    """The same with a demotion (admin to viewer): parent and child both outrank viewer; the
    child's stored revocation is the one its event records."""
    admin = tenant_user(acme, "admin@acme.test")
    with schema_context(acme.schema_name):
        parent = token_issue(actor=admin, name="parent", role="admin", scopes=["read", "admin"]).plaintext
    child = _mint_child(acme, parent)

    demoted = client_for(acme, "owner@acme.test").post(f"/members/{admin.pk}/role/", {"role": "viewer"})
    assert demoted.status_code in (200, 302), demoted.content

    events = _revocations_of(acme, child)
    assert len(events) == 1, f"the child token has {len(events)} token.revoked events: {[e.data for e in events]}"
    with schema_context(acme.schema_name):
        stored = ApiToken.objects.get(prefix=child[3:15])
    assert stored.revoked_reason == events[0].data.get("reason")
