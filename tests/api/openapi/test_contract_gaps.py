"""The published OpenAPI document (/api/schema/) against what the API answers: statuses and parameters."""

import json

from django_tenants.utils import schema_context

from apps.lifecycle.models import RetentionPolicy
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue
from tests.api.openapi.oas import document, problems


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
