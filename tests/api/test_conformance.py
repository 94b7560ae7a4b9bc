"""The API answers as its OpenAPI document and docs say: documented statuses and media types,
JSON errors under /api/v1/ for every method, bodies of writes always parsed, long filters
through the real server (PRODUCT.md "Interfaces", docs/api/filtering.md)."""

import ast
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.lifecycle.models import Export
from apps.runs.models import Run
from tests.api.conftest import api, issue
from tests.conftest import ROOT
from tests.lifecycle.test_exports import run_here, start
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run


def openapi(tenant) -> dict:
    response = Client(HTTP_HOST=f"{tenant.slug}.localhost").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


# --- documented statuses ------------------------------------------------------------------------


def test_token_revoke_answers_with_the_status_its_openapi_operation_documents(acme):
    """DELETE /api/v1/tokens/{id} answers 200 with the revoked token, and its operation says so
    (not drf-spectacular's default 204 for a DELETE; Schemathesis skips this operation)."""
    owner = api(acme, issue(acme, role="owner"))
    token_id = owner.post(
        "/api/v1/tokens",
        json.dumps({"name": "ci", "role": "viewer", "scopes": ["read"]}),
        content_type="application/json",
    ).json()["metadata"]["id"]
    response = owner.delete(f"/api/v1/tokens/{token_id}")
    assert response.status_code == 200
    documented = openapi(acme)["paths"]["/api/v1/tokens/{token_id}"]["delete"]["responses"]
    assert "application/json" in documented["200"]["content"], sorted(documented)
    assert "204" not in documented


def test_request_too_large_413_and_not_acceptable_406_are_documented(acme):
    owner = api(acme, issue(acme, role="owner"))
    body = json.dumps({"content": "x" * (5 * 1024 * 1024)})
    response = owner.post("/api/v1/validate", body, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    paths = openapi(acme)["paths"]
    assert {"413", "406"} <= set(paths["/api/v1/validate"]["post"]["responses"])
    assert "413" not in paths["/api/v1/workspace"]["get"]["responses"]  # no body, nothing too large
    refused = owner.get("/api/v1/workspace", HTTP_ACCEPT="text/csv")
    assert (refused.status_code, refused.json()["error"]["code"]) == (406, "not_acceptable")


def test_a_malformed_export_id_is_export_not_found(acme):
    """docs/export-jobs.md: "A malformed or unknown id is 404 (`export_not_found`)"."""
    client = api(acme, issue(acme))
    unknown = client.get(f"/api/v1/exports/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "export_not_found")
    for path in ("/api/v1/exports/nope", "/api/v1/exports/nope/download", "/api/v1/exports/%00/download"):
        response = client.get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "export_not_found"), path


def _kinds_verify_reports() -> set[str]:
    """Every `kind` that apps/audit/verify.py passes to `result.add(seq, kind, message)`."""
    kinds = set()
    for node in ast.walk(ast.parse((ROOT / "apps/audit/verify.py").read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            kinds.add(node.args[1].value)
    return kinds


def test_the_schemas_chain_break_kinds_are_every_kind_verification_reports(acme):
    """`first_break.kind` of GET /api/v1/audit/verify is an enum in the schema: a generated client
    must accept `inserted` and `anchor_unsigned` too."""
    reported = _kinds_verify_reports()
    assert {"inserted", "anchor_unsigned"} <= reported
    declared = set(openapi(acme)["components"]["schemas"]["ChainBreakKindEnum"]["enum"])
    assert reported == declared
    documented = (ROOT / "docs/audit.md").read_text()
    assert all(f"| `{kind}` |" in documented for kind in reported)


# --- content negotiation ------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/octet-stream", "application/zip", "*/*"])
def test_export_download_accepts_the_media_type_it_documents(acme, media, accept):
    owner = api(acme, issue(acme, role="owner"))
    export_id = start(owner).json()["id"]
    run_here(acme, export_id)
    link = owner.get(f"/api/v1/exports/{export_id}").json()["download_url"]
    response = owner.get(link, HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content[:200]
    assert b"".join(response.streaming_content)[:2] == b"PK"
    forged = owner.get(link.replace("signature=", "signature=x"), HTTP_ACCEPT=accept)
    assert (forged.status_code, forged.json()["error"]["code"]) == (403, "link_invalid")


# --- JSON errors everywhere under /api/v1/ ------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_published_json_schemas_refuse_other_methods_with_a_json_405(acme, method):
    """Also for a real client, whose write no CSRF check turns into an HTML 403 first."""
    client = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    response = client.generic(method, "/api/v1/schemas/domain.json", HTTP_AUTHORIZATION="Bearer af_x")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_the_published_json_schemas_answer_head(acme):
    """RFC 9110 §9.1: HEAD works wherever GET does."""
    response = Client(HTTP_HOST="acme.localhost").head("/api/v1/schemas/domain.json")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"


# --- bodies of writes that take none ------------------------------------------------------------


def test_a_malformed_json_body_does_not_start_an_export(acme, media):
    owner = api(acme, issue(acme, role="owner"))
    response = owner.post("/api/v1/exports", "{nope", content_type="application/json")
    with schema_context(acme.schema_name):
        created = Export.objects.count()
    assert (response.status_code, created) == (400, 0), response.content[:200]
    assert response.json()["error"]["code"] == "parse_error"


def test_an_unsupported_content_type_does_not_cancel_a_run_and_an_empty_body_does(acme):
    agent = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, agent)
    owner = api(acme, issue(acme, role="owner"))
    response = owner.post(f"/api/v1/runs/{run.pk}/cancel", "cancel it", content_type="text/plain")
    with schema_context(acme.schema_name):
        status = Run.objects.get(pk=run.pk).status
    assert (response.status_code, status) == (415, Run.Status.QUEUED), (response.status_code, status)
    assert response.json()["error"]["code"] == "unsupported_media_type"
    # No body at all, whatever content type a client sends with it: the write goes ahead.
    response = owner.post(f"/api/v1/runs/{run.pk}/cancel", "", content_type="text/plain")
    assert response.status_code == 200, response.content[:200]


# --- long filters over the real server ---------------------------------------------------------


def _get(port: int, host: str, token: str, path: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Host": host, "Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_filters_near_the_documented_limit_reach_the_api_under_gunicorn(live_port, fresh_tenant, django_db_blocker):
    """gunicorn takes request lines up to 8,190 bytes (foundry/gunicorn.conf.py): a filter one
    character past 4,096 gets the API's own JSON 400, and 700 accented characters (4,200 bytes
    encoded) are answered."""
    with django_db_blocker.unblock():
        token = issue(fresh_tenant, role="owner")
    host = f"{fresh_tenant.slug}.localhost"
    too_long = urllib.parse.urlencode({"filter": "email:" + "a" * 4091})
    status, content_type, body = _get(live_port, host, token, f"/api/v1/members?{too_long}")
    assert (status, content_type.split(";")[0]) == (400, "application/json"), (status, content_type, body[:120])
    assert json.loads(body)["error"]["code"] == "filter_too_long"
    accented = urllib.parse.urlencode({"filter": 'full_name = "' + "é" * 700 + '"'})
    status, content_type, body = _get(live_port, host, token, f"/api/v1/members?{accented}")
    assert status == 200, (status, content_type, body[:120])


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/api/v1/agents/nosuch", "agent_not_found"),
        ("GET", "/api/v1/domains/nosuch/versions", "domain_not_found"),
        ("POST", "/api/v1/agents/nosuch/deploy", "agent_not_found"),
        ("POST", "/api/v1/agents/nosuch/migrate", "agent_not_found"),
        ("GET", "/api/v1/agents/nosuch/deployments", "agent_not_found"),
    ],
)
def test_an_unknown_agent_or_domain_is_named_in_its_404(acme, method, path, code):
    client = api(acme, issue(acme, role="owner"))
    body = {"domain_version": 1} if path.endswith("/migrate") else {"version": 1}  # a valid body for each
    response = client.generic(method, path, json.dumps(body), content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, code)
    assert "'nosuch'" in response.json()["error"]["message"]
