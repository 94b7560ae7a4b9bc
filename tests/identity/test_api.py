"""/api/v1/sso: get, set (PUT), delete — admins and owners with the admin scope; the secret is write-only."""

import json

import pytest

from tests.api.conftest import api, issue
from tests.conftest import audit_events
from tests.identity.conftest import SECRET, configure, stored

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def put(client, body) -> object:
    return client.put("/api/v1/sso", json.dumps(body), content_type="application/json")


def test_an_owner_sets_gets_and_deletes_the_configuration(acme, idp):
    client = api(acme, issue(acme, role="owner"))
    assert client.get("/api/v1/sso").json()["error"]["code"] == "sso_not_configured"
    body = {
        "issuer": idp.issuer,
        "client_id": "foundry",
        "client_secret": SECRET,
        "roles_claim": "groups",
        "role_map": {"foundry-admins": "admin"},
        "allowed_domains": ["acme.test"],
    }
    response = put(client, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["client_secret_set"] is True and "client_secret" not in data
    assert (data["issuer"], data["jwks_uri"], data["signing_algs"]) == (
        idp.issuer,
        f"{idp.issuer}/jwks",
        ["RS256", "ES256"],
    )
    assert (data["role_map"], data["jit_enabled"], data["sso_required"]) == ({"foundry-admins": "admin"}, True, False)
    got = client.get("/api/v1/sso")
    assert got.json() == data
    for answer in (response, got):
        assert SECRET.encode() not in answer.content
    assert client.delete("/api/v1/sso").status_code == 204
    assert stored(acme) is None
    again = client.delete("/api/v1/sso")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "sso_not_configured")


def test_refusals_use_the_error_envelope_and_change_nothing(acme, idp):
    client = api(acme, issue(acme, role="owner"))
    idp.document = {**idp.discovery(), "id_token_signing_alg_values_supported": ["HS256"]}
    response = put(client, {"issuer": idp.issuer, "client_id": "foundry", "client_secret": SECRET})
    assert response.status_code == 400
    assert "discovery_algs_refused" in json.dumps(response.json()["error"])
    owner_map = {"issuer": idp.issuer, "client_id": "c", "client_secret": SECRET, "roles_claim": "g"}
    response = put(client, {**owner_map, "role_map": {"bosses": "owner"}})
    assert response.status_code == 400 and "role_map_owner_refused" in json.dumps(response.json()["error"])
    response = put(client, {"issuer": 5, "client_id": ["x"]})
    assert response.status_code == 400
    assert stored(acme) is None and audit_events("acme", action="sso.configure") == []


@pytest.mark.parametrize("role", ["developer", "operator", "viewer"])
def test_other_roles_are_refused(acme, idp, role):
    configure(acme, idp)
    client = api(acme, issue(acme, role=role))
    assert client.get("/api/v1/sso").status_code == 403
    assert put(client, {"issuer": idp.issuer, "client_id": "x", "client_secret": SECRET}).status_code == 403
    assert client.delete("/api/v1/sso").status_code == 403
    assert stored(acme).client_id == "foundry-acme"


def test_a_token_without_the_admin_scope_is_refused(acme, idp):
    configure(acme, idp)
    client = api(acme, issue(acme, role="owner", scopes=("read", "write")))
    assert client.get("/api/v1/sso").status_code == 403
    assert client.delete("/api/v1/sso").status_code == 403
    assert stored(acme) is not None


def test_an_admin_reads_the_configuration_but_may_not_change_it(acme, idp):
    """The provider signs members in, owners included: an admin pointing it at a provider of
    their own could sign in as an owner who has no identity yet."""
    configure(acme, idp)
    admin = api(acme, issue(acme, role="admin"))
    assert admin.get("/api/v1/sso").status_code == 200
    body = {"issuer": idp.issuer, "client_id": "mine", "client_secret": SECRET}
    assert put(admin, body).status_code == 403
    assert admin.delete("/api/v1/sso").status_code == 403
    assert stored(acme).client_id == "foundry-acme"
