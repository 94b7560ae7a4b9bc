"""The published OpenAPI document (/api/schema/) against what the API answers: statuses and parameters."""

import json
import re
import urllib.parse

from django_tenants.utils import schema_context

from apps.lifecycle.models import RetentionPolicy
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue
from tests.api.openapi.oas import document, problems
from tests.providers.conftest import encryption_key  # noqa: F401 - fixture
from tests.runs.conftest import FINANCE, TRIAGE, deploy


def test_workspace_deletion_documents_its_409_legal_hold(acme):
    """`POST /api/v1/workspace/deletion` is refused `409 legal_hold` while the audit trail is on
    legal hold (docs/lifecycle.md): the operation lists that answer, so a generated client has a
    type for it."""
    owner = api(acme, issue(acme, role="owner"))
    with schema_context(acme.schema_name):
        RetentionPolicy.objects.update_or_create(pk=1, defaults={"audit_legal_hold": True})
    body = json.dumps({"confirm": "acme"})
    response = owner.post("/api/v1/workspace/deletion", body, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "legal_hold")
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE  # refused, nothing changed
    found = problems(acme, "POST", "/api/v1/workspace/deletion", response)
    assert not found, "\n".join(found)


def test_audit_export_refuses_empty_query_values_its_schema_does_not_allow(acme):
    """`checkpoints` is a boolean, `after` an integer from 0 and `format` one of jsonl|ocsf, none
    with `allowEmptyValue`: `?checkpoints=`, `?after=` and `?format=` are refused (400), not taken
    as the defaults (schemathesis' negative-data check found `checkpoints=` accepted)."""
    viewer = api(acme, issue(acme, role="owner", scopes=("read",)))
    parameters = {p["name"]: p for p in document(acme)["paths"]["/api/v1/audit/export"]["get"]["parameters"]}
    found = []
    for name in ("checkpoints", "after", "format"):
        response = viewer.get(f"/api/v1/audit/export?{name}=")
        if response.status_code != 400 and not parameters[name].get("allowEmptyValue"):
            found.append(
                f"?{name}= answered {response.status_code}, but the schema says {parameters[name]['schema']} "
                "without allowEmptyValue"
            )
    assert not found, "\n".join(found)


def _list_operations(doc):
    for template, operations in doc["paths"].items():
        get = operations.get("get")
        if get and any(p["name"] == "order_by" for p in get.get("parameters", [])):
            yield template, get


def test_the_default_order_each_list_documents_is_an_order_it_accepts(acme):
    """Every list's `order_by` parameter is described as "Fields: ... Default: `<order>`"
    (foundry/api/lists.py). docs/api/filtering.md: `order_by` is "comma-separated fields from the
    resource's allowlist". The documented default must itself be a valid `order_by`: a client
    that sends the documented default (to be explicit, or to add a page_token to the same query)
    must not get `400 unknown_order_field`: the primary key that breaks ties (`id` on agent and
    domain versions, audit events and checkpoints, providers) is named only where it is an order
    field of its own."""
    deploy(acme, FINANCE, TRIAGE)
    owner = api(acme, issue(acme, role="owner"))
    found = []
    for template, operation in _list_operations(document(acme)):
        described = next(p for p in operation["parameters"] if p["name"] == "order_by")["description"]
        default = re.search(r"Default: `([^`]*)`", described).group(1)
        path = template.replace("{name}", "finance" if template.startswith("/api/v1/domains") else "invoice-triage")
        if "{run_id}" in path:
            continue  # the run lists accept `id` (it is in their allowlist)
        response = owner.get(path + "?" + urllib.parse.urlencode({"order_by": default}))
        if response.status_code != 200:
            found.append(
                f"{template}: documented default {default!r} -> {response.status_code} {response.content[:160]!r}"
            )
    assert not found, "\n".join(found)


def test_page_size_declares_the_minimum_the_api_enforces(acme):
    """docs/api/filtering.md: `page_size` that is "negative or not a number" is 400
    `invalid_page_size`: the parameter says `minimum: 0`, so a generated client does not send
    `page_size=-1` and schema-driven fuzzers do not count it as valid data."""
    owner = api(acme, issue(acme, role="owner"))
    refused = owner.get("/api/v1/members?page_size=-1")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_page_size")
    found = []
    for template, operation in _list_operations(document(acme)):
        schema = next(p for p in operation["parameters"] if p["name"] == "page_size")["schema"]
        if schema.get("minimum") is None:
            found.append(f"{template}: page_size schema {schema} allows -1, which is refused")
    assert not found, "\n".join(found)


def test_api_key_required_has_the_same_details_shape_whichever_way_it_is_raised(acme, encryption_key):  # noqa: F811
    """The Error component documents `details` as "Per-field errors (object), or the problems of
    a document (array)" and README: every error is `{"error": {"code", "message", "details"?}}`
    with a stable code. `PUT /api/v1/providers/openai` answers `api_key_required` with
    `details: {"api_key": [{"code", "message"}]}` both when no key is stored and when base_url
    changes without the key (it was an array without messages), so a client keyed on the code
    reads `details` one way."""
    owner = api(acme, issue(acme, role="owner"))

    def put(body):
        return owner.put("/api/v1/providers/openai", json.dumps(body), content_type="application/json")

    first = put({})
    assert (first.status_code, first.json()["error"]["code"]) == (400, "api_key_required")
    assert put({"api_key": "sk-test-abcdef123456"}).status_code == 201
    moved = put({"base_url": "https://other.example.com/v1"})
    assert (moved.status_code, moved.json()["error"]["code"]) == (400, "api_key_required")
    with schema_context(acme.schema_name):
        from apps.providers.models import ProviderCredential

        assert ProviderCredential.objects.get(provider="openai").base_url == ""  # refused, nothing changed
    expected_shape = first.json()["error"]["details"]
    got = moved.json()["error"]["details"]
    assert isinstance(got, dict) and set(got) == set(expected_shape), (expected_shape, got)
    assert all({"code", "message"} <= set(entry) for entry in got["api_key"]), got
