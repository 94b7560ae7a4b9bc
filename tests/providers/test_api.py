"""/api/v1/providers: list, get, set (PUT), delete — admins and owners only; the key is write-only."""

import json

import pytest

from tests.api.conftest import api, issue
from tests.conftest import audit_events
from tests.providers.conftest import KEY, set_credential, stored


def put(client, provider: str, body) -> object:
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.put(f"/api/v1/providers/{provider}", payload, content_type="application/json")


def test_an_admin_sets_lists_gets_and_deletes_a_credential(acme):
    client = api(acme, issue(acme, role="admin"))
    response = put(client, "openai", {"api_key": KEY, "base_url": "https://gateway.example.com/v1"})
    assert response.status_code == 201, response.content  # created
    body = response.json()
    assert body["provider"] == "openai" and body["api_key_masked"] == f"…{KEY[-4:]}"
    assert body["base_url"] == "https://gateway.example.com/v1"
    assert set(body) == {
        "provider",
        "base_url",
        "api_key_masked",
        "organization",
        "api_version",
        "deployment",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
    }
    listed = client.get("/api/v1/providers")
    assert listed.status_code == 200
    assert [p["provider"] for p in listed.json()["providers"]] == ["openai"]
    assert listed.json()["next_page_token"] == ""
    assert client.get("/api/v1/providers/openai").json() == body
    for response in (listed, client.get("/api/v1/providers/openai")):
        assert KEY.encode() not in response.content
    assert client.delete("/api/v1/providers/openai").status_code == 204
    assert stored(acme) is None
    assert client.get("/api/v1/providers/openai").status_code == 404
    delete_again = client.delete("/api/v1/providers/openai")
    assert (delete_again.status_code, delete_again.json()["error"]["code"]) == (404, "provider_not_configured")


def test_put_without_a_key_keeps_the_stored_one_and_replaces_the_rest(acme):
    client = api(acme, issue(acme, role="owner"))
    put(client, "openai", {"api_key": KEY, "base_url": "https://one.example.com/v1", "organization": "org-1"})
    before = stored(acme).api_key_encrypted
    response = put(client, "openai", {"base_url": "https://one.example.com/v1"})
    assert response.status_code == 200
    assert (response.json()["base_url"], response.json()["organization"]) == ("https://one.example.com/v1", "")
    assert stored(acme).api_key_encrypted == before


def test_moving_the_endpoint_without_giving_the_key_again_is_refused(acme):
    """Else anyone allowed to edit settings could send the stored key to a server of theirs."""
    client = api(acme, issue(acme, role="owner"))
    put(client, "openai", {"api_key": KEY, "base_url": "https://one.example.com/v1"})
    response = put(client, "openai", {"base_url": "https://attacker.example/v1"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "api_key_required")
    assert stored(acme).base_url == "https://one.example.com/v1"
    assert put(client, "openai", {"api_key": KEY, "base_url": "https://two.example.com/v1"}).status_code == 200


def test_lists_filter_and_order(acme):
    set_credential(acme)
    set_credential(acme, "anthropic", api_key="sk-ant-0000111122223333")
    client = api(acme, issue(acme))
    assert [p["provider"] for p in client.get("/api/v1/providers").json()["providers"]] == ["anthropic", "openai"]
    ordered = client.get("/api/v1/providers", {"order_by": "provider desc"}).json()["providers"]
    assert [p["provider"] for p in ordered] == ["openai", "anthropic"]
    filtered = client.get("/api/v1/providers", {"filter": "provider = anthropic"}).json()["providers"]
    assert [p["provider"] for p in filtered] == ["anthropic"]
    bad = client.get("/api/v1/providers", {"filter": "api_key_encrypted = x"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "unknown_field")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "api_key_required", "api_key"),
        ({"api_key": 12345678}, "not_a_string", "api_key"),
        ({"api_key": None}, "null", "api_key"),
        ({"api_key": ""}, "blank", "api_key"),
        ({"api_key": "k" * 1001}, "max_length", "api_key"),
        ({"api_key": f"{KEY} trailing words"}, "api_key_invalid", "api_key"),
        ({"api_key": KEY, "base_url": "file:///etc/passwd"}, "base_url_invalid", "base_url"),
        ({"api_key": KEY, "base_url": "http://169.254.169.254/"}, "base_url_refused", "base_url"),
        ({"api_key": KEY, "base_url": ["https://a.example.com"]}, "not_a_string", "base_url"),
        ({"api_key": KEY, "deployment": "prod"}, "deployment_requires_api_version", "deployment"),
        ({"api_key": KEY, "api_version": "2024-10-21"}, "base_url_required", "base_url"),
    ],
)
def test_bad_input_is_a_400_with_a_stable_code_that_never_echoes_the_key(acme, body, code, field):
    response = put(api(acme, issue(acme)), "openai", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["details"]
    assert KEY.encode() not in response.content
    assert stored(acme) is None


@pytest.mark.parametrize("payload", ["{nope", "[1, 2]", '"text"', "null"])
def test_malformed_bodies_are_400(acme, payload):
    response = put(api(acme, issue(acme)), "openai", payload)
    assert response.status_code == 400
    assert "code" in response.json()["error"]
    assert stored(acme) is None


def test_anthropic_refuses_openai_only_fields(acme):
    response = put(api(acme, issue(acme)), "anthropic", {"api_key": KEY, "api_version": "2024-10-21"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "field_not_supported")


@pytest.mark.parametrize("provider", ["scripted", "mystery", "OPENAI", "%20"])
def test_only_real_providers_have_credentials(acme, provider):
    client = api(acme, issue(acme))
    response = put(client, provider, {"api_key": KEY})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "provider_unknown")
    assert client.get(f"/api/v1/providers/{provider}").status_code == 404


@pytest.mark.parametrize("role", ["developer", "operator", "viewer"])
def test_other_roles_can_neither_read_nor_change_credentials(acme, role):
    set_credential(acme)
    client = api(acme, issue(acme, role=role))
    for response in (
        client.get("/api/v1/providers"),
        client.get("/api/v1/providers/openai"),
        put(client, "openai", {"api_key": "sk-other-0000000000000000"}),
        client.delete("/api/v1/providers/openai"),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (403, "permission_denied")
    assert stored(acme).api_key_last4 == KEY[-4:]


def test_a_token_without_the_admin_scope_is_refused(acme):
    client = api(acme, issue(acme, role="owner", scopes=("read", "write", "run")))
    assert client.get("/api/v1/providers").status_code == 403
    assert put(client, "openai", {"api_key": KEY}).status_code == 403
    assert stored(acme) is None


def test_anonymous_requests_are_401(acme):
    assert api(acme).get("/api/v1/providers").status_code == 401
    assert put(api(acme), "openai", {"api_key": KEY}).status_code == 401


def test_encryption_not_configured_is_a_503_not_a_500(acme, settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = []
    response = put(api(acme, issue(acme)), "openai", {"api_key": KEY})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "encryption_not_configured")
    assert stored(acme) is None


def test_changes_are_audited_with_the_token_as_actor_and_the_caller_address(acme):
    client = api(acme, issue(acme, name="ci-bot"))
    put(client, "openai", {"api_key": KEY})
    client.delete("/api/v1/providers/openai")
    actions = [(e.action, e.ip, e.actor_type) for e in audit_events("acme", action__startswith="provider.")]
    assert sorted(actions) == [
        ("provider.credential.delete", "127.0.0.1", "token"),
        ("provider.credential.set", "127.0.0.1", "token"),
    ]


def test_the_openapi_schema_documents_the_operations(acme):
    from django.test import Client

    schema = Client(HTTP_HOST="acme.localhost").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    detail = schema["paths"]["/api/v1/providers/{provider}"]
    assert {op["operationId"] for op in detail.values()} == {"providers_get", "providers_set", "providers_delete"}
    assert schema["paths"]["/api/v1/providers"]["get"]["operationId"] == "providers_list"
    assert "503" in detail["put"]["responses"]
    body = schema["components"]["schemas"]["CredentialInputRequest"]["properties"]
    assert body["api_key"]["writeOnly"] is True
    output = schema["components"]["schemas"]["CredentialOutput"]["properties"]
    assert "api_key" not in output and "api_key_encrypted" not in output


def test_get_of_an_unknown_or_unset_provider_names_which(acme):
    client = api(acme, issue(acme))
    unknown = client.get("/api/v1/providers/bogus")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "provider_unknown")
    unset = client.get("/api/v1/providers/anthropic")
    assert (unset.status_code, unset.json()["error"]["code"]) == (404, "provider_not_configured")
