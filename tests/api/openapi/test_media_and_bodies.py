"""What a client generated from the published OpenAPI document (/api/schema/) relies on: a
response's media types chosen by `Accept`, and a body the server requires marked required."""

import pytest
from django.test import Client

from tests.api.conftest import api, issue


def openapi(tenant) -> dict:
    response = Client(HTTP_HOST=f"{tenant.slug}.localhost").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_usage_statement_answers_text_csv_to_a_client_that_accepts_only_text_csv(acme):
    """`GET /api/v1/usage/statement` documents its 200 in `application/json` and `text/csv`: without
    `?format=`, `Accept` chooses; `?format=` the client's Accept refuses, or an Accept meeting
    neither, is 406 `not_acceptable`."""
    documented = openapi(acme)["paths"]["/api/v1/usage/statement"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in documented
    client = api(acme, issue(acme, role="viewer", scopes=("read",)))
    response = client.get("/api/v1/usage/statement", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv"), (response["Content-Type"], response.content[:80])
    csv = client.get("/api/v1/usage/statement", HTTP_ACCEPT="text/csv; charset=utf-8")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")  # parameters narrow nothing
    for accept in ("*/*", "text/csv;q=0.5, application/json", "application/json; charset=utf-8", "*/*, text/csv;q=0"):
        answered = client.get("/api/v1/usage/statement", HTTP_ACCEPT=accept)
        assert answered["Content-Type"].startswith("application/json"), (accept, answered["Content-Type"])
    assert client.get("/api/v1/usage/statement")["Content-Type"].startswith("application/json")  # no Accept
    assert client.get("/api/v1/usage/statement?format=csv")["Content-Type"].startswith("text/csv")
    for accept, query in (("application/json", "?format=csv"), ("image/png", "")):
        refused = client.get(f"/api/v1/usage/statement{query}", HTTP_ACCEPT=accept)
        assert (refused.status_code, refused.json()["error"]["code"]) == (406, "not_acceptable"), accept


@pytest.mark.parametrize(
    ("path", "operation_id"),
    [("/api/v1/members/{member_id}", "members_update"), ("/api/v1/workspace", "workspace_update")],
)
def test_a_patch_whose_body_the_server_requires_documents_its_request_body_as_required(acme, path, operation_id):
    """A PATCH is validated whole, and refused without a body (400): its `requestBody` is marked
    required, so a generated client does not offer to leave it out."""
    operation = openapi(acme)["paths"][path]["patch"]
    assert operation["operationId"] == operation_id
    owner = api(acme, issue(acme, role="owner"))
    url = path
    if "{member_id}" in path:
        url = path.replace("{member_id}", str(owner.get("/api/v1/members").json()["members"][0]["id"]))
    refused = owner.patch(url)  # no body at all, as the document allows
    assert refused.status_code == 400, refused.content
    assert operation["requestBody"].get("required") is True, operation["requestBody"]
