"""Every API error is JSON {"error": {"code", "message"}} with a 4xx: the OpenAPI document's refusals too
(its view renders YAML otherwise)."""

import json

import pytest

from tests.api.conftest import api


@pytest.mark.parametrize(
    "method, query, accept",
    [("PUT", "", None), ("GET", "?format=xml", None), ("GET", "", "text/html")],
)
def test_the_openapi_schema_endpoint_answers_errors_as_json(acme, method, query, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = api(acme).generic(method, "/api/schema/" + query, **headers)
    assert 400 <= response.status_code < 500
    assert response["Content-Type"].startswith("application/json"), (response["Content-Type"], response.content)
    assert set(json.loads(response.content)["error"]) >= {"code", "message"}
