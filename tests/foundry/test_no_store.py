"""A secret the platform shows once (an API token's plaintext, an invitation link that sets a
member's password) must not be kept by the browser's or a proxy's cache: a response carrying it
says `Cache-Control: no-store`, as the platform's other sensitive answers (audit exports,
statements, workspace archives) already do."""

from tests.api.conftest import api, issue
from tests.conftest import client_for


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_the_console_page_showing_a_new_tokens_plaintext_is_not_cacheable(acme):
    client = client_for(acme, "owner@acme.test")
    response = client.post("/settings/tokens/new/", {"name": "ci", "role": "developer", "scopes": ["read"]})
    assert response.status_code == 200
    assert response.context["plaintext"].encode() in response.content
    assert _no_store(response), response.get("Cache-Control")


def test_the_api_answer_carrying_a_new_tokens_plaintext_is_not_cacheable(acme):
    response = api(acme, issue(acme)).post(
        "/api/v1/tokens", {"name": "ci", "role": "viewer", "scopes": ["read"]}, content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["token"].startswith("af_")
    assert _no_store(response), response.get("Cache-Control")


def test_the_console_page_showing_an_invitation_link_is_not_cacheable(acme):
    client = client_for(acme, "owner@acme.test")
    response = client.post("/members/add/", {"email": "new-owner@acme.test", "role": "owner"})
    assert response.status_code == 200
    assert response.context["invite_url"].encode() in response.content
    assert _no_store(response), response.get("Cache-Control")


def test_the_api_answer_carrying_an_invitation_link_is_not_cacheable(acme):
    response = api(acme, issue(acme, role="owner")).post(
        "/api/v1/members", {"email": "new-owner@acme.test", "role": "owner"}, content_type="application/json"
    )
    assert response.status_code == 201
    assert "/invite/" in response.json()["invite_url"]
    assert _no_store(response), response.get("Cache-Control")
