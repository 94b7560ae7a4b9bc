"""The console's Model providers page (settings.manage)."""

import pytest

from tests.conftest import client_for
from tests.providers.conftest import KEY, set_credential, stored

PAGE = "/settings/providers/"


def test_an_admin_sets_a_key_and_sees_only_its_last_four_characters(acme):
    client = client_for(acme, "admin@acme.test")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert b"Not configured" in page.content and b"offline" in page.content  # scripted is labelled as such
    response = client.post(f"{PAGE}openai/", {"openai-api_key": KEY, "openai-base_url": "https://gw.example.com/v1"})
    assert response.status_code == 302 and response["Location"] == PAGE
    assert stored(acme).base_url == "https://gw.example.com/v1"
    listing = client.get(PAGE)
    assert f"…{KEY[-4:]}".encode() in listing.content
    assert KEY.encode() not in listing.content
    assert b"Leave empty to keep the stored key." in listing.content


def test_replacing_without_a_key_keeps_it(acme):
    set_credential(acme)
    before = stored(acme).api_key_encrypted
    client = client_for(acme, "owner@acme.test")
    response = client.post(f"{PAGE}openai/", {"openai-api_key": "", "openai-organization": "org-2"})
    assert response.status_code == 302
    assert (stored(acme).organization, stored(acme).api_key_encrypted) == ("org-2", before)
    moved = client.post(f"{PAGE}openai/", {"openai-api_key": "", "openai-base_url": "https://two.example.com/v1"})
    assert moved.status_code == 400 and stored(acme).base_url == ""


def test_the_page_prefills_the_stored_fields_but_never_the_key(acme):
    set_credential(acme, base_url="https://gw.example.com/v1", organization="org-acme")
    page = client_for(acme, "owner@acme.test").get(PAGE)
    form = page.context["rows"][0]["form"]
    assert (form["base_url"].value(), form["organization"].value()) == ("https://gw.example.com/v1", "org-acme")
    assert form["api_key"].value() is None


def test_bad_input_shows_errors_without_echoing_the_key_and_stores_nothing(acme):
    client = client_for(acme, "admin@acme.test")
    response = client.post(f"{PAGE}openai/", {"openai-api_key": f"{KEY} x", "openai-base_url": "http://10.0.0.1/v1"})
    assert response.status_code == 400
    errors = next(r["form"] for r in response.context["rows"] if r["name"] == "openai").errors
    assert set(errors) == {"api_key", "base_url"}
    assert KEY.encode() not in response.content
    missing = client.post(f"{PAGE}anthropic/", {"anthropic-api_key": ""})
    assert missing.status_code == 400
    assert "api_key" in next(r["form"] for r in missing.context["rows"] if r["name"] == "anthropic").errors
    assert stored(acme) is None and stored(acme, "anthropic") is None


def test_the_anthropic_form_has_no_openai_fields(acme):
    page = client_for(acme, "admin@acme.test").get(PAGE)
    anthropic = next(r["form"] for r in page.context["rows"] if r["name"] == "anthropic")
    assert set(anthropic.fields) == {"api_key", "base_url"}


def test_delete_asks_first_then_deletes(acme):
    set_credential(acme)
    client = client_for(acme, "admin@acme.test")
    confirm = client.get(f"{PAGE}openai/delete/")
    assert confirm.status_code == 200 and b"Delete the" in confirm.content
    assert stored(acme) is not None  # asking changes nothing
    assert client.post(f"{PAGE}openai/delete/").status_code == 302
    assert stored(acme) is None
    assert client.get(f"{PAGE}openai/delete/").status_code == 404


def test_unknown_providers_are_404(acme):
    client = client_for(acme, "admin@acme.test")
    assert client.post(f"{PAGE}scripted/", {"scripted-api_key": KEY}).status_code == 404
    assert client.get(f"{PAGE}mystery/delete/").status_code == 404


def test_without_an_encryption_key_the_page_says_so_and_saving_is_refused(acme, settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = []
    client = client_for(acme, "admin@acme.test")
    assert b"The platform has no encryption key" in client.get(PAGE).content
    response = client.post(f"{PAGE}openai/", {"openai-api_key": KEY})
    assert response.status_code == 503 and b"encryption_not_configured" in response.content
    assert stored(acme) is None


@pytest.mark.parametrize("email", ["developer@acme.test", "operator@acme.test", "viewer@acme.test"])
def test_other_roles_cannot_see_or_change_providers(acme, email):
    set_credential(acme)
    client = client_for(acme, email)
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}openai/", {"openai-api_key": "sk-mine-000000000000000"}).status_code == 403
    assert client.post(f"{PAGE}openai/delete/").status_code == 403
    assert stored(acme).api_key_last4 == KEY[-4:]
    assert b"Model providers" not in client.get("/").content  # not in their navigation


def test_the_navigation_shows_model_providers_to_admins(acme):
    assert b'href="/settings/providers/"' in client_for(acme, "admin@acme.test").get("/").content
