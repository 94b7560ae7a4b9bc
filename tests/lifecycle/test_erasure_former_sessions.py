"""A data-subject erasure ends a former member's sessions too (docs/lifecycle.md: "The member is
removed (if still one), with their sessions, ..."), and removing a member ends theirs.

`member_remove` deleted the member row but not their sessions ("open sessions die with the row":
unusable, but kept), and `member_erase` deleted sessions only of a member it still found, by the
current id. Erasing someone removed before left their session rows until they expired: their
user id, their password-hash HMAC and, after an SSO sign-in, the provider's ID token, which names
them. Found by the residue review."""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add, member_remove
from apps.lifecycle.erasure import member_erase
from tests.conftest import client_for, tenant_user

EMAIL = "pat.former@acme.test"


def _sessions_of(user_id: int, email: str) -> list[dict]:
    found = []
    for session in Session.objects.all():
        data = session.get_decoded()
        if data.get(SESSION_KEY) == str(user_id) or email in repr(data):
            found.append(data)
    return found


def _pat_signed_in(acme, owner):
    with schema_context(acme.schema_name):
        pat = member_add(actor=owner, email=EMAIL, role=Role.VIEWER, full_name="Pat Former")
    client = client_for(acme, EMAIL)  # a real session of Pat's, in the workspace's schema
    session = client.session
    # What the OIDC callback keeps in the session (apps/identity/oidc.py: OIDC_STORE_ID_TOKEN):
    # the ID token, whose claims name the person.
    session["oidc_id_token"] = "eyJhbGciOiJub25lIn0." + f'{{"email": "{EMAIL}", "name": "Pat Former"}}' + "."
    session.save()
    with schema_context(acme.schema_name):
        assert _sessions_of(pat.pk, EMAIL), "test setup: Pat has a session"
    return pat


def test_removing_a_member_ends_their_sessions(acme):
    owner = tenant_user(acme, "owner@acme.test")
    pat = _pat_signed_in(acme, owner)
    with schema_context(acme.schema_name):
        member_remove(actor=owner, member=pat)
        assert _sessions_of(pat.pk, EMAIL) == [], "a removed member's sessions survive the removal"


def test_erasing_a_former_member_deletes_the_sessions_they_left_behind(acme):
    """Sessions a member's row no longer stands behind (removed before removals ended them)."""
    owner = tenant_user(acme, "owner@acme.test")
    pat = _pat_signed_in(acme, owner)
    with schema_context(acme.schema_name):
        User.objects.filter(pk=pat.pk).delete()
        assert _sessions_of(pat.pk, EMAIL)
        erased = member_erase(actor=owner, email=EMAIL)
        assert erased.actor_id == f"user:{pat.pk}"
        assert erased.sessions == 1
        assert _sessions_of(pat.pk, EMAIL) == [], "the erased (former) member's sessions survive the erasure"
