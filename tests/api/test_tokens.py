from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for


def test_an_admin_issues_a_token_shown_once_and_stored_hashed(acme):
    response = client_for(acme, "admin@acme.test").post(
        "/api/v1/tokens",
        {"name": "ci", "role": "developer", "scopes": ["read", "write"], "expires_in": "30d"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN="x",
    )
    assert response.status_code == 201, response.content
    plaintext = response.json()["token"]
    assert plaintext.startswith("af_")
    with schema_context("acme"):
        stored = ApiToken.objects.get(name="ci")
        assert plaintext not in (stored.secret_hash, stored.prefix) and stored.prefix in plaintext
        assert audit_events("acme", action="token.issued")
    listed = api(acme, plaintext).get("/api/v1/tokens")
    assert listed.status_code == 403  # a developer-role token may not manage tokens
    listing = api(acme, issue(acme)).get("/api/v1/tokens").json()
    assert plaintext not in str(listing)
    assert {t["name"] for t in listing["tokens"]} >= {"ci"}


def test_a_token_authenticates_and_records_last_use(acme):
    token = issue(acme, role="viewer", scopes=["read"])
    assert api(acme, token).get("/api/v1/members").status_code == 200
    with schema_context("acme"):
        assert ApiToken.objects.get(prefix=token.split("_")[1]).last_used_at is not None


def test_revocation_takes_effect_at_once(acme):
    token = issue(acme, role="viewer", scopes=["read"])
    client = api(acme, token)
    assert client.get("/api/v1/members").status_code == 200
    with schema_context("acme"):
        token_id = ApiToken.objects.get(prefix=token.split("_")[1]).pk
    assert api(acme, issue(acme)).delete(f"/api/v1/tokens/{token_id}").json()["revoked_at"]
    response = client.get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused(acme):
    token = issue(acme, expires_in=timedelta(minutes=1))
    with schema_context("acme"):
        ApiToken.objects.filter(prefix=token.split("_")[1]).update(expires_at="2000-01-01T00:00:00Z")
    assert api(acme, token).get("/api/v1/members").status_code == 401


def test_a_token_of_one_tenant_is_invalid_on_another(acme, globex):
    token = issue(acme)
    response = api(globex, token).get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("header", ["Bearer", "Bearer nope", "Basic abc", "Bearer af_zz_zz", "Token x"])
def test_malformed_credentials_are_401(acme, header):
    response = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=header).get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("invalid_token", "invalid_authorization_header")


def test_scopes_narrow_a_token(acme):
    read_only = api(acme, issue(acme, role="admin", scopes=["read"]))
    assert read_only.get("/api/v1/members").status_code == 200
    response = read_only.post(
        "/api/v1/members", {"email": "x@acme.test", "role": "viewer"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "scope" in response.json()["error"]["message"]


def test_a_token_issues_tokens_no_wider_than_its_own_scopes(acme):
    """A token's scopes narrow its role; a token minting a wider one would undo that."""
    admin_only = api(acme, issue(acme, role="admin", scopes=["admin"]))
    assert (
        admin_only.post("/api/v1/runs", {"agent": "x", "input": "y"}, content_type="application/json").status_code
        == 403
    )
    body = {"name": "wider", "role": "admin", "scopes": ["read", "write", "run", "admin"]}
    wider = admin_only.post("/api/v1/tokens", body, content_type="application/json")
    assert wider.status_code == 403
    assert "lacks read, run, write" in wider.json()["error"]["message"]
    narrower = {"name": "narrower", "role": "developer", "scopes": ["admin"]}
    assert admin_only.post("/api/v1/tokens", narrower, content_type="application/json").status_code == 201
    with schema_context("acme"):
        assert set(ApiToken.objects.values_list("name", flat=True)) == {"test", "narrower"}


def test_a_token_cannot_exceed_its_role(acme):
    viewer = api(acme, issue(acme, role="viewer", scopes=["read", "write", "run", "admin"]))
    response = viewer.post(
        "/api/v1/members", {"email": "x@acme.test", "role": "viewer"}, content_type="application/json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "role": "viewer", "scopes": ["read"]}, "name"),
        ({"name": "x", "role": "emperor", "scopes": ["read"]}, "role"),
        ({"name": "x", "role": "viewer", "scopes": []}, "scopes"),
        ({"name": "x", "role": "viewer", "scopes": ["root"]}, "scopes"),
    ],
)
def test_bad_token_requests_are_400_and_issue_nothing(acme, body, field):
    client = api(acme, issue(acme))
    with schema_context("acme"):
        before = ApiToken.objects.count()
    response = client.post("/api/v1/tokens", body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    with schema_context("acme"):
        assert ApiToken.objects.count() == before


def test_a_bad_expiry_is_400(acme):
    response = api(acme, issue(acme)).post(
        "/api/v1/tokens",
        {"name": "x", "role": "viewer", "scopes": ["read"], "expires_in": "forever"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "expiry_invalid"


def test_admins_cannot_issue_owner_tokens(acme):
    admin_session = client_for(acme, "admin@acme.test")
    response = admin_session.post(
        "/api/v1/tokens", {"name": "x", "role": "owner", "scopes": ["admin"]}, content_type="application/json"
    )
    assert response.status_code == 403


def test_only_owners_revoke_owner_tokens(acme):
    owner_token = issue(acme, role="owner", name="owner automation")
    with schema_context("acme"):
        token_id = ApiToken.objects.get(name="owner automation").pk
    admin_session = client_for(acme, "admin@acme.test")
    admin_token = api(acme, issue(acme, role="admin"))
    assert admin_session.delete(f"/api/v1/tokens/{token_id}").status_code == 403
    assert admin_token.delete(f"/api/v1/tokens/{token_id}").status_code == 403
    console = admin_session.post(f"/settings/tokens/{token_id}/revoke/")
    assert console.status_code == 403
    assert f"/settings/tokens/{token_id}/revoke/".encode() not in admin_session.get("/settings/tokens/").content
    assert api(acme, owner_token).get("/api/v1/members").status_code == 200  # still works
    owner_session = client_for(acme, "owner@acme.test")
    assert f"/settings/tokens/{token_id}/revoke/".encode() in owner_session.get("/settings/tokens/").content
    assert owner_session.delete(f"/api/v1/tokens/{token_id}").status_code == 200
    assert api(acme, owner_token).get("/api/v1/members").status_code == 401


def test_create_and_revoke_commands(acme, capsys):
    call_command("create_api_token", "acme", "--name", "bootstrap", "--role", "developer", "--scopes", "read,run")
    plaintext = capsys.readouterr().out.strip()
    assert api(acme, plaintext).get("/api/v1/members").status_code == 200
    call_command("revoke_api_token", "acme", plaintext.split("_")[1])
    assert api(acme, plaintext).get("/api/v1/members").status_code == 401
    with pytest.raises(CommandError, match="scopes"):
        call_command("create_api_token", "acme", "--name", "x", "--role", "viewer", "--scopes", "root")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("create_api_token", "nope", "--name", "x", "--role", "viewer")
    with pytest.raises(CommandError, match="No token"):
        call_command("revoke_api_token", "acme", "zzzz")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(acme, scheme):
    """The authentication scheme is case-insensitive (RFC 9110 §11.1): some clients send it
    lowercase."""
    token = issue(acme)
    response = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"{scheme} {token}").get("/api/v1/members")
    assert response.status_code == 200, response.content
