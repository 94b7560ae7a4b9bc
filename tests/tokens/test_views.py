import pytest
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from tests.api.conftest import api
from tests.conftest import audit_events, client_for


def test_an_admin_issues_and_revokes_a_token_in_the_console(acme):
    client = client_for(acme, "admin@acme.test")
    page = client.post(
        "/settings/tokens/new/",
        {"name": "deploy bot", "role": "developer", "scopes": ["read", "write"], "expires_in": "7d"},
    )
    assert page.status_code == 200
    plaintext = page.context["plaintext"]
    assert plaintext.startswith("af_") and plaintext.encode() in page.content
    assert api(acme, plaintext).get("/api/v1/members").status_code == 200
    # Shown once: the list page never contains it again.
    assert plaintext.encode() not in client.get("/settings/tokens/").content
    with schema_context("acme"):
        token = ApiToken.objects.get(name="deploy bot")
    assert client.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 302
    assert api(acme, plaintext).get("/api/v1/members").status_code == 401


def test_bad_token_forms_show_errors_and_issue_nothing(acme):
    client = client_for(acme, "admin@acme.test")
    response = client.post("/settings/tokens/new/", {"name": "", "role": "viewer", "scopes": [], "expires_in": "soon"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {"name", "scopes"}
    response = client.post(
        "/settings/tokens/new/", {"name": "x", "role": "viewer", "scopes": ["read"], "expires_in": "soon"}
    )
    assert response.status_code == 400
    assert "expires_in" in response.context["form"].errors
    with schema_context("acme"):
        assert not ApiToken.objects.exists()


def test_members_without_settings_permission_cannot_see_or_issue_tokens(acme):
    for email in ("developer@acme.test", "viewer@acme.test", "operator@acme.test"):
        client = client_for(acme, email)
        assert client.get("/settings/tokens/").status_code == 403
        assert (
            client.post("/settings/tokens/new/", {"name": "x", "role": "viewer", "scopes": ["read"]}).status_code == 403
        )
    with schema_context("acme"):
        assert not ApiToken.objects.exists()


def test_tokens_of_another_tenant_cannot_be_revoked_by_id(acme, globex):
    from tests.api.conftest import issue

    plaintext = issue(globex)
    with schema_context("globex"):
        token_id = ApiToken.objects.get().pk
    assert client_for(acme, "owner@acme.test").post(f"/settings/tokens/{token_id}/revoke/").status_code == 404
    assert api(globex, plaintext).get("/api/v1/members").status_code == 200


@pytest.mark.parametrize("form", ["bare", "af_", "console", "whole"])
def test_revoke_api_token_takes_the_prefix_in_any_form_it_is_shown(acme, form):
    """The console shows `af_<prefix>_…`; the command takes that, the bare prefix, `af_<prefix>`
    or the whole token."""
    from io import StringIO

    from django.core.management import call_command

    from tests.api.conftest import issue

    plaintext = issue(acme, name=f"revoke-{form}")
    prefix = plaintext[3:15]
    given = {"bare": prefix, "af_": f"af_{prefix}", "console": f"af_{prefix}_…", "whole": plaintext}[form]
    call_command("revoke_api_token", "acme", given, stdout=StringIO())
    with schema_context("acme"):
        assert ApiToken.objects.get(prefix=prefix).revoked_at is not None


def test_reloading_the_page_that_shows_a_new_token_issues_no_second_one(acme):
    """The issue form answers with the page showing the secret; reloading that page sends the form
    again. Each rendering of the form carries its own `once` value, taken once: the reload is 409
    `form_already_sent`, and no second live token (nor `token.issued`) comes of it."""
    client = client_for(acme, "admin@acme.test")
    once = client.get("/settings/tokens/").context["once"]
    data = {"name": "ci bot", "role": "developer", "scopes": ["read"], "once": once}
    shown = client.post("/settings/tokens/new/", data)
    assert shown.status_code == 200 and shown.context["plaintext"].startswith("af_")
    assert shown.context["once"] != once  # the page shown has a form of its own
    again = client.post("/settings/tokens/new/", data)
    assert again.status_code == 409 and b"form_already_sent" in again.content
    with schema_context("acme"):
        assert ApiToken.objects.filter(name="ci bot").count() == 1
    assert len(audit_events("acme", action="token.issued")) == 1
