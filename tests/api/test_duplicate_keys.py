"""A JSON body that names a key twice in an object is refused (README, "API"): RFC 8259 §4 leaves
what a reader does with it unpredictable (Python's keeps the last value), so a proxy, a WAF or a
log reader keeping the first would see another request than the one the platform carried out.
The platform refuses the same ambiguity in its YAML documents (`yaml_duplicate_key`)."""

import pytest
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from tests.api.conftest import api, issue


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "ci", "role": "viewer", "scopes": ["read"], "role": "owner"}',
        '{"name": "ci", "role": "viewer", "scopes": ["read"], "x": {"a": 1, "a": 2}}',  # nested, too
    ],
    ids=["top-level", "nested"],
)
def test_a_body_naming_a_key_twice_is_json_duplicate_key_and_issues_nothing(acme, body):
    """`{"role": "viewer", ..., "role": "owner"}` issued an owner token (201)."""
    client = api(acme, issue(acme, role="owner"))
    with schema_context(acme.schema_name):
        before = ApiToken.objects.count()
    response = client.post("/api/v1/tokens", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "json_duplicate_key"
    with schema_context(acme.schema_name):
        assert ApiToken.objects.count() == before


def test_a_duplicate_key_of_odd_text_is_named_safely(acme):
    """The message names the key (cut, escaped as Python writes it): a key of control characters
    or a lone surrogate is not written back raw."""
    client = api(acme, issue(acme, role="owner"))
    body = '{"\\ud800\\u202e": 1, "\\ud800\\u202e": 2}'
    response = client.post("/api/v1/tokens", body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "json_duplicate_key" and "\\ud800\\u202e" in error["message"]
