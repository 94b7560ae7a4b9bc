"""Agent pins written in YAML forms other than a plain decimal integer: a float (7.0, which JSON
Schema takes for an integer) is refused like any non-integer, so no pin escapes the checks against
the pinned domain; migrate rewrites `+1`, `!!int 1`, `&pin 1`, `0x1` (all YAML's integer 1)."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Version
from tests.api.conftest import api, issue
from tests.catalog.conftest import example

FINANCE = example("domains/finance.yaml")
TRIAGE = example("agents/invoice-triage.yaml")
# finance v2: the vendor entity is removed (the triage agent's find_vendors tool names it).
FINANCE_NO_VENDOR = """\
apiVersion: foundry/v1
kind: Domain
metadata: {name: finance}
spec:
  entities:
    invoice:
      fields:
        id: {type: string, required: true}
        amount: {type: decimal}
"""


def post(client, path, body):
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


@pytest.fixture
def admin(acme):
    return api(acme, issue(acme, role="admin", scopes=("read", "write")))


def test_agent_pinned_to_a_missing_domain_version_written_as_float_is_a_422_not_a_500(acme, admin):
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    response = post(admin, "agents", {"content": TRIAGE.replace("version: 1", "version: 7.0")})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "document_invalid"
    assert "schema_type" in response.content.decode()


def test_float_pin_does_not_bypass_the_entity_check_against_the_pinned_domain(acme, admin):
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    assert post(admin, "domains", {"content": FINANCE_NO_VENDOR}).status_code == 201
    plain = post(admin, "agents", {"content": TRIAGE.replace("version: 1", "version: 2")})
    assert plain.status_code == 422 and "dis_unknown_entity" in plain.content.decode()  # control
    response = post(admin, "agents", {"content": TRIAGE.replace("version: 1", "version: 2.0")})
    assert response.status_code == 422, response.content
    with schema_context(acme.schema_name):
        assert not Version.objects.filter(document__name="invoice-triage").exists()


@pytest.mark.parametrize("pin", ["+1", "!!int 1", "&pin 1", "0x1"])
def test_migrate_works_for_any_integer_spelling_of_the_pin(acme, admin, pin):
    assert post(admin, "domains", {"content": FINANCE}).status_code == 201
    published = post(admin, "agents", {"content": TRIAGE.replace("version: 1", f"version: {pin}")})
    assert published.status_code == 201, published.content
    assert post(admin, "agents/invoice-triage/deploy", {"version": 1}).status_code == 201
    assert (
        post(admin, "domains", {"content": FINANCE.replace("    AP:", "    PO: Purchase order.\n    AP:")}).status_code
        == 201
    )
    response = post(admin, "agents/invoice-triage/migrate", {})
    assert response.status_code == 200, response.content
    assert response.json()["deployment"]["domain"]["version"] == 2
