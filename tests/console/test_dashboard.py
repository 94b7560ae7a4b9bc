"""The dashboard: the workspace's facts for every role, its latest audit events only for those
who may read the trail (audit.view: owners and admins)."""

import pytest

from tests.conftest import client_for


def _token_issued(acme) -> None:
    owner = client_for(acme, "owner@acme.test")
    assert owner.post("/settings/tokens/new/", {"name": "ci", "role": "viewer", "scopes": ["read"]}).status_code == 200


@pytest.mark.parametrize("role", ["viewer", "operator", "developer"])
def test_roles_without_audit_view_do_not_see_the_trail_on_the_dashboard(acme, role):
    _token_issued(acme)
    client = client_for(acme, f"{role}@acme.test")
    assert client.get("/audit/").status_code == 403
    page = client.get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "token.issued" not in body and "Recent activity" not in body
    assert "owner@acme.test" not in body


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_the_latest_events(acme, role):
    _token_issued(acme)
    body = client_for(acme, f"{role}@acme.test").get("/").content.decode()
    assert "Recent activity" in body and "token.issued" in body
