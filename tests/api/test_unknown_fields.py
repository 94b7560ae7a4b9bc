"""A write body with a field the endpoint does not know — a misspelt one — is refused
(`field_unknown`, naming it) and changes nothing: DRF would drop it, and a field left out means
"remove" for a budget and "reset" for a provider's endpoint (docs/api.md)."""

import json

import pytest
from cryptography.fernet import Fernet

from tests.api.conftest import api, issue


@pytest.fixture(autouse=True)
def _encryption_key(settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


def _refused(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["code"] == "field_unknown"
    assert [d["code"] for d in error["details"][field]] == ["field_unknown"]


def test_a_misspelt_budget_amount_does_not_delete_the_budget(acme):
    client = api(acme, issue(acme, role="owner"))
    body = {"project": "", "monthly_cost_usd": "100.00", "on_exhausted": "stop"}
    assert client.put("/api/v1/budgets", body, content_type="application/json").status_code == 200
    before = client.get("/api/v1/budgets").json()["budgets"]
    # "monthly_cost" for "monthly_cost_usd": the caller means to lower the cap.
    typo = client.put("/api/v1/budgets", {"project": "", "monthly_cost": "5.00"}, content_type="application/json")
    _refused(typo, "monthly_cost")
    assert client.get("/api/v1/budgets").json()["budgets"] == before


def test_a_misspelt_provider_field_keeps_the_endpoint(acme):
    client = api(acme, issue(acme, role="owner"))
    key, gateway = "sk-proj-acme-9f8e7d6c5b4a3f2e1d0c", "https://gateway.example.com/v1"
    first = client.put(
        "/api/v1/providers/openai", json.dumps({"api_key": key, "base_url": gateway}), "application/json"
    )
    assert first.status_code == 201, first.content
    typo = client.put("/api/v1/providers/openai", json.dumps({"api_key": key, "baseUrl": gateway}), "application/json")
    _refused(typo, "baseUrl")
    assert client.get("/api/v1/providers/openai").json()["base_url"] == gateway


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/tokens", {"name": "ci", "scope": ["read"]}, "scope"),
        ("/api/v1/members", {"email": "new@acme.test", "role": "viewer", "fullname": "N"}, "fullname"),
        ("/api/v1/runs", {"agent": "clerk", "input": "hi", "scripts": []}, "scripts"),
    ],
)
def test_other_write_bodies_refuse_unknown_fields_too(acme, path, body, field):
    client = api(acme, issue(acme, role="owner"))
    _refused(client.post(path, body, content_type="application/json"), field)


def test_the_schema_says_request_bodies_take_no_other_fields(acme):
    schema = api(acme, issue(acme)).get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("BudgetInputRequest", "CredentialInputRequest", "PatchedMemberUpdateInputRequest"):
        assert schema[name]["additionalProperties"] is False, name


def test_a_misspelt_workspace_setting_is_named_not_its_declared_field(acme):
    """The declared field's type was checked first: `traceContent` was answered `invalid` about
    `trace_content` ("Must be true or false."), never named."""
    client = api(acme, issue(acme, role="owner"))
    before = client.get("/api/v1/workspace").json()
    _refused(client.patch("/api/v1/workspace", {"traceContent": True}, content_type="application/json"), "traceContent")
    assert client.get("/api/v1/workspace").json() == before
    wrong = client.patch("/api/v1/workspace", {"trace_content": "true"}, content_type="application/json")
    assert wrong.status_code == 400 and wrong.json()["error"]["details"]["trace_content"][0]["code"] == "invalid"
