"""An API token issued with an identity provider's access token rests on the member that token
is linked to; when the provider lowers that member's role (re-read at sign-in), their tokens
that outrank the new role are revoked, as when an admin lowers it (tests/tokens/test_issuer_standing.py)."""

import pytest
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from tests.api.conftest import api
from tests.conftest import audit_events
from tests.identity.test_login import ACCOUNTS, account, client_config, login, member, sso

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def provider(oidc_provider_factory, acme):
    return oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)


def test_a_role_lowered_by_the_provider_revokes_the_tokens_that_outrank_it(acme, provider):
    sso(acme, provider)
    login(acme, provider, "ada")
    ada = member(acme, "ada@acme.test")
    bearer = api(acme, provider.access_token("foundry-acme", "ada"))
    issued = {}
    for role in ("admin", "developer"):
        response = bearer.post(
            "/api/v1/tokens", {"name": role, "role": role, "scopes": ["read"]}, content_type="application/json"
        )
        assert response.status_code == 201, response.content
        assert response.json()["metadata"]["issued_by"] == ada.pk
        issued[role] = response.json()["token"]

    provider.set_accounts({**ACCOUNTS, "ada": account("ada", groups=["foundry-devs"])})
    login(acme, provider, "ada")
    assert member(acme, "ada@acme.test").role == "developer"

    assert api(acme, issued["admin"]).get("/api/v1/members").status_code == 401
    assert api(acme, issued["developer"]).get("/api/v1/members").status_code == 200
    with schema_context("acme"):
        gone = ApiToken.objects.get(name="admin")
    assert gone.revoked_reason == "issuer_demoted"
    (event,) = audit_events("acme", action="token.revoked")
    assert (event.target_id, event.actor_id) == (str(gone.pk), f"user:{ada.pk}")
    assert event.data == {"reason": "issuer_demoted"}
