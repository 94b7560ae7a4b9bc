"""A token's offspring and its issuer's expiry: revoking a token revokes the tokens it issued
(and theirs); a token issued with an identity provider's access token expires no later than it,
whatever form its `exp` takes; a bad item in a list field is a coded error naming the item."""

from datetime import datetime

import jwt
import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for, tenant_user
from tests.identity.conftest import loopback_allowed  # noqa: F401 — fixture
from tests.identity.test_bearer import signed
from tests.identity.test_login import ACCOUNTS, client_config, login, sso

CHILD = {"name": "child", "role": "admin", "scopes": ["read", "admin"]}


def _prefix(plaintext: str) -> str:
    return plaintext.split("_")[1]


def test_revoking_a_token_also_stops_the_tokens_it_minted(acme):
    """A leaked token mints a child, then a grandchild; the admin revokes the leaked token, and
    both go with it: each one `token.revoked` with the reason `token_revoked`."""
    admin = issue(acme, role="owner", scopes=["read", "admin"], name="owner-ci")
    leaked = issue(acme, role="admin", scopes=["read", "admin"], name="leaked")
    minted = api(acme, leaked).post("/api/v1/tokens", CHILD, content_type="application/json")
    assert minted.status_code == 201, minted.content
    child = minted.json()["token"]
    grand = api(acme, child).post("/api/v1/tokens", {**CHILD, "name": "grandchild"}, content_type="application/json")
    assert grand.status_code == 201, grand.content
    grandchild = grand.json()["token"]
    with schema_context(acme.schema_name):
        leaked_id = ApiToken.objects.get(prefix=_prefix(leaked)).pk
    assert api(acme, admin).delete(f"/api/v1/tokens/{leaked_id}").status_code == 200
    assert api(acme, leaked).get("/api/v1/members").status_code == 401
    assert api(acme, child).get("/api/v1/members").status_code == 401
    assert api(acme, grandchild).get("/api/v1/members").status_code == 401
    with schema_context(acme.schema_name):
        reasons = dict(ApiToken.objects.filter(name__in=["child", "grandchild"]).values_list("name", "revoked_reason"))
    assert reasons == {"child": "token_revoked", "grandchild": "token_revoked"}
    revoked = audit_events(acme.schema_name, action="token.revoked")
    assert sorted(e.data.get("reason", "") for e in revoked) == ["", "token_revoked", "token_revoked"]


@pytest.fixture
def idp_admin(acme, oidc_provider_factory, loopback_allowed):  # noqa: F811
    """ada (an admin) signed in once through the workspace's provider; the provider and a
    verified access token's claims, to re-sign with other values."""
    provider = oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)
    sso(acme, provider)
    login(acme, provider, "ada")
    claims = jwt.decode(provider.access_token("foundry-acme", "ada"), options={"verify_signature": False})
    return provider, claims


def test_an_idp_token_with_a_far_future_exp_issuing_a_token_is_not_a_500(acme, idp_admin):
    """An access token whose `exp` lies past year 9999 (PyJWT checks only that it is in the
    future) issues a token bounded by the longest lifetime a token may have, not a 500."""
    provider, claims = idp_admin
    token = signed(provider, claims, exp=10**12)
    assert api(acme, token).get("/api/v1/members").status_code == 200
    response = api(acme, token).post(
        "/api/v1/tokens", {"name": "ci", "role": "developer", "scopes": ["read"]}, content_type="application/json"
    )
    assert response.status_code == 201, response.content


def test_an_idp_token_whose_exp_is_a_numeric_string_cannot_mint_a_token_that_never_expires(acme, idp_admin):
    """PyJWT accepts `"exp": "<digits>"` and validates `int(exp)`: the token issued with it
    expires when that number says, not never."""
    provider, claims = idp_admin
    token = signed(provider, claims, exp=str(claims["exp"]))
    response = api(acme, token).post(
        "/api/v1/tokens", {"name": "ci", "role": "developer", "scopes": ["read"]}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    expires_at = response.json()["metadata"]["expires_at"]
    assert expires_at is not None and datetime.fromisoformat(expires_at).timestamp() <= claims["exp"]


def test_a_bad_scope_in_the_issue_request_is_a_coded_error_not_a_python_repr(acme):
    """`"scopes": [null]`: 400 with the item's own code and a message naming it, never a repr
    of DRF's error structures."""
    client = api(acme, issue(acme))
    response = client.post(
        "/api/v1/tokens", {"name": "x", "role": "admin", "scopes": [None]}, content_type="application/json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    message = error["details"]["scopes"][0]["message"]
    assert "ErrorDetail" not in message, message
    assert error["details"]["scopes"][0]["code"] == "null", error
    assert message == "[0]: This field may not be null."


def test_a_token_revoked_by_its_members_demotion_takes_its_offspring_with_it(acme):
    """admin@acme's admin token mints a viewer token over the API. The owner lowers admin@acme to
    developer: the admin token is revoked (issuer_demoted), and the token it minted with it, though
    its own role fits the new one (docs/roles.md: "a leaked token's offspring go with it")."""
    admin = tenant_user(acme, "admin@acme.test")
    with schema_context("acme"):
        parent = token_issue(actor=admin, name="parent", role="admin", scopes=["read", "admin"]).plaintext
    minted = api(acme, parent).post(
        "/api/v1/tokens", {"name": "child", "role": "viewer", "scopes": ["read"]}, content_type="application/json"
    )
    assert minted.status_code == 201, minted.content
    child = minted.json()["token"]
    assert api(acme, child).get("/api/v1/members").status_code == 200

    demoted = client_for(acme, "owner@acme.test").post(f"/members/{admin.pk}/role/", {"role": "developer"})
    assert demoted.status_code in (200, 302), demoted.content
    with schema_context("acme"):
        assert User.objects.get(pk=admin.pk).role == "developer"
        assert ApiToken.objects.get(prefix=parent[3:15]).revoked_reason == "issuer_demoted"

    assert api(acme, parent).get("/api/v1/members").status_code == 401
    with schema_context("acme"):
        stored_child = ApiToken.objects.get(prefix=child[3:15])
    assert stored_child.revoked_at is not None, "the demoted member's revoked token left its offspring usable"
    assert api(acme, child).get("/api/v1/members").status_code == 401
