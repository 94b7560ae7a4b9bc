import re

import pytest
from django.test import Client
from django.urls import get_resolver

from tests.api.conftest import api, issue


def test_unknown_api_paths_are_json_404(acme):
    response = Client(HTTP_HOST="acme.localhost").get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "There is nothing at this address."}}


def test_unsupported_methods_are_json_405(acme):
    response = api(acme, issue(acme)).put("/api/v1/members", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_anonymous_requests_are_json_401_with_a_bearer_challenge(acme):
    response = Client(HTTP_HOST="acme.localhost").get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_malformed_json_is_400(acme):
    response = api(acme, issue(acme)).post("/api/v1/members", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize(
    "body, code",
    [
        ("[" * 100_000 + "]" * 100_000, "json_too_deep"),
        ('{"a": ' * 70 + "1" + "}" * 70, "json_too_deep"),
        ('{"agent": "x", "input": "nul\\u0000"}', "json_text_invalid"),
        ('{"agent": "x", "input": "half \\ud800 a pair"}', "json_text_invalid"),
        ('{"agent": "x", "script": [{"respond": "\\u0000"}]}', "json_text_invalid"),
    ],
)
def test_json_that_no_column_could_take_is_400_not_500(acme, body, code):
    client = api(acme, issue(acme, role="owner"))
    response = client.post("/api/v1/runs", body, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_the_openapi_schema_documents_every_endpoint_and_list_parameter(acme):
    response = Client(HTTP_HOST="acme.localhost").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    routes = {
        "/api/v1/" + re.sub(r"<\w+:(\w+)>", r"{\1}", str(p.pattern))
        for p in next(r for r in get_resolver("foundry.urls_api").url_patterns if str(r.pattern) == "v1/").url_patterns
        if hasattr(p.callback, "view_class")  # DRF views; the JSON Schemas are plain public files
    }
    assert "/api/v1/agents/{name}/versions/{number}" in routes
    assert set(schema["paths"]) == routes
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/members"]["get"]["parameters"]}
    assert set(parameters) == {"filter", "order_by", "page_size", "page_token"}
    assert "role (enum)" in parameters["filter"]["description"]


def test_the_interactive_docs_work_offline(acme):
    response = Client(HTTP_HOST="acme.localhost").get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "https://" not in html.split("<body")[0]  # assets come from our static files, no CDN


def test_the_500_handler_answers_json_for_the_api_and_a_page_otherwise():
    from django.test import RequestFactory

    from foundry.errors import server_error

    api_response = server_error(RequestFactory().get("/api/v1/members"))
    assert api_response.status_code == 500
    assert b'"code": "server_error"' in api_response.content
    page = server_error(RequestFactory().get("/members/"))
    assert page.status_code == 500 and b"<html" in page.content and b"Traceback" not in page.content


def test_the_openapi_schema_generates_without_warnings_and_validates(tmp_path):
    """Name clashes between components (two serializers both called InputSerializer, say) make
    drf-spectacular document one endpoint with another's body: they must not happen."""
    from django.core.management import call_command

    call_command("spectacular", "--file", str(tmp_path / "schema.yaml"), "--validate", "--fail-on-warn")
    assert "MemberAddInput" in (tmp_path / "schema.yaml").read_text()


def test_the_schema_is_generated_once_per_media_type_whatever_the_query(acme, monkeypatch):
    """Anonymous and not counted by the limiter: each generation costs ~70 ms of CPU, so a process
    generates the document once per media type; `?version=` and `?lang=` do not make another."""
    from drf_spectacular.generators import SchemaGenerator

    from foundry.api import schema

    monkeypatch.setattr(schema, "_RENDERED", {})
    generated = []
    original = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        generated.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    client = Client(HTTP_HOST="acme.localhost")
    first = client.get("/api/schema/")
    again = [client.get(f"/api/schema/?{query}") for query in ("", "version=2", "lang=de", "version=x&lang=fr")]
    assert {r.status_code for r in [first, *again]} == {200}
    assert all(r.content == first.content for r in again) and len(generated) == 1
    as_json = [client.get("/api/schema/?format=json") for _ in range(2)]
    assert as_json[0].content == as_json[1].content and len(generated) == 2
    assert as_json[1]["Content-Type"] == "application/vnd.oai.openapi+json"
