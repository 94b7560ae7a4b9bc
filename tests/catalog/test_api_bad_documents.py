"""Documents the loader used to let through to a 500 (on publishing, or even validating): each is a
problem with its line now, and nothing is stored."""

import json

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.catalog.models import Version
from tests.api.conftest import issue
from tests.catalog.conftest import example

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
HUGE_HEX = "0x" + "f" * 5000  # about 6,000 decimal digits, more than Python converts to text


def _client(tenant) -> Client:
    token = issue(tenant, role="developer", scopes=("read", "write"))
    return Client(HTTP_HOST=f"{tenant.slug}.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")


def _post(client, path: str, body: dict):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


@pytest.fixture
def acme_dev(acme):
    client = _client(acme)
    assert _post(client, "domains", {"content": FINANCE}).status_code == 201
    return client


def test_an_agent_with_a_huge_integer_argument_is_not_a_500(acme, acme_dev):
    source = TRIAGE.replace("arguments: {", f"arguments: {{big: {HUGE_HEX}, ", 1)
    assert source != TRIAGE
    response = _post(acme_dev, "agents", {"content": source, "filename": "agents/triage.yaml"})
    assert response.status_code == 422 and b"yaml_invalid_number" in response.content, response.content[:300]


def test_a_nul_escape_in_a_string_is_not_a_500(acme, acme_dev):
    source = FINANCE.replace("    AP:", '    NUL: "a\\0b"\n    AP:', 1)
    assert source != FINANCE
    response = _post(acme_dev, "domains", {"content": source, "filename": "domains/finance.yaml"})
    assert response.status_code == 422 and b"yaml_text_invalid" in response.content, response.content[:300]
    with schema_context(acme.schema_name):  # nothing stored
        assert Version.objects.filter(document__name="finance").count() == 1


def test_validate_api_with_an_explicit_empty_int_tag_is_not_a_500(acme_dev):
    response = _post(acme_dev, "validate", {"content": "a: !!int\n", "filename": "x.yaml"})
    assert response.status_code == 200
    assert [p["code"] for p in response.json()["problems"]][:1] == ["yaml_invalid_number"]


def test_validate_api_with_a_huge_integer_domain_pin_is_not_a_500(acme_dev):
    source = TRIAGE.replace("version: 1", f"version: {HUGE_HEX}", 1)
    assert source != TRIAGE
    response = _post(acme_dev, "validate", {"content": source, "filename": "agents/triage.yaml"})
    assert response.status_code == 200
    assert "yaml_invalid_number" in [p["code"] for p in response.json()["problems"]]
