"""A document's size limit is 1 MiB of UTF-8 (docs/manifests.md), answered `yaml_too_large` by
the loader in the API as in `forge` and the console. The API's input check counted characters
first: 1 MiB + 1 of ASCII was a 400 `max_length`, while 600 KiB of accented letters (1.2 MB)
reached the loader; one limit, two answers, depending on the alphabet."""

import json

import pytest

from foundry.manifests.loader import MAX_BYTES
from tests.api.conftest import api, issue

ASCII = "a: " + "x" * MAX_BYTES
ACCENTED = "a: " + "é" * (MAX_BYTES // 2 + 1)


@pytest.mark.parametrize("content", [ASCII, ACCENTED], ids=["ascii", "accented"])
def test_validate_answers_a_document_over_the_limit_with_yaml_too_large(acme, content):
    client = api(acme, issue(acme, role="viewer", scopes=("read",)))
    response = client.post("/api/v1/validate", json.dumps({"content": content}), content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert [p["code"] for p in response.json()["problems"]] == ["yaml_too_large"]


@pytest.mark.parametrize("content", [ASCII, ACCENTED], ids=["ascii", "accented"])
def test_publish_refuses_it_with_the_same_problem_and_writes_nothing(acme, content):
    client = api(acme, issue(acme))
    before = client.get("/api/v1/agents").json()
    response = client.post("/api/v1/agents", json.dumps({"content": content}), content_type="application/json")
    assert response.status_code == 422, response.content[:300]
    body = response.json()["error"]
    assert body["code"] == "document_invalid"
    assert [p["code"] for p in body["details"]] == ["yaml_too_large"]
    assert client.get("/api/v1/agents").json() == before
