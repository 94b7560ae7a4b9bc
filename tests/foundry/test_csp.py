"""Every response carries a Content-Security-Policy that lets a page load scripts, styles and
images only from the platform's own files, nothing inline, and submit forms only to its own
origin — plus, for a member signed in by single sign-on, the identity provider's origin that
signing out redirects to (foundry/csp.py). tests/browser/test_csp.py proves, in Chromium, that
no console page or the API docs trip over it."""

import re
from pathlib import Path

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.identity.models import SsoConfiguration
from apps.identity.oidc import SESSION_ISSUER
from apps.tenants.routing import route_cache_clear
from apps.tenants.services import tenant_suspend
from foundry.csp import origin_of
from tests.api.conftest import api, issue
from tests.conftest import ROOT, client_for, host_of


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def _strict(directives: dict[str, list[str]]) -> None:
    assert directives["default-src"] == ["'none'"]
    for name in ("script-src", "style-src", "connect-src", "form-action"):
        assert directives[name] == ["'self'"], (name, directives[name])
    assert directives["object-src"] == directives["base-uri"] == directives["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in value for values in directives.values() for value in values)


def test_a_console_page_allows_only_its_own_files_and_nothing_inline(acme):
    response = client_for(acme, "owner@acme.test").get("/")
    assert response.status_code == 200
    _strict(policy(response))


def test_the_sign_in_page_api_answers_and_error_pages_carry_the_policy_too(acme):
    _strict(policy(Client(HTTP_HOST=host_of(acme)).get("/login/")))
    _strict(policy(api(acme, issue(acme)).get("/api/v1/workspace")))
    unknown = Client(HTTP_HOST="nobody.localhost").get("/")
    assert unknown.status_code == 404
    _strict(policy(unknown) | {"style-src": ["'self'"]})  # and its inline style's nonce, below


TEMPLATES = sorted(
    path for root in (ROOT / "templates", *ROOT.glob("apps/*/templates")) for path in Path(root).rglob("*.html")
)
# Inline: a script without src, a style element without the response's nonce (the error page's
# has one), a style attribute, an event handler, a javascript: link, htmx's hx-on.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style(?!\{% if nonce %\} nonce=)|\sstyle=|\son[a-z]+=|javascript:|hx-on",
    re.IGNORECASE,
)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_an_inline_script_style_or_handler(template):
    """The policy would refuse them in the browser: a template that adds one breaks its page."""
    assert INLINE.search("<style>") and not INLINE.search('<style{% if nonce %} nonce="{{ nonce }}"{% endif %}>')
    assert len(TEMPLATES) > 20
    found = INLINE.findall(template.read_text())
    assert not found, f"{template}: {found}"


def test_the_api_docs_load_their_script_from_a_file_of_their_own(acme):
    client = Client(HTTP_HOST=host_of(acme))
    page = client.get("/api/docs/")
    assert page.status_code == 200
    _strict(policy(page))
    html = page.content.decode()
    assert "<style" not in html
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all("src=" in attributes for attributes in scripts)
    script_url = re.search(r'<script src="([^"]*script[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def _sso_configured(tenant, end_session_endpoint: str) -> None:
    now = timezone.now()
    with schema_context(tenant.schema_name):
        SsoConfiguration.objects.update_or_create(
            pk=1,
            defaults={
                "issuer": "https://login.acme.example",
                "client_id": "foundry-acme",
                "client_secret_encrypted": "x",
                "authorization_endpoint": "https://login.acme.example/authorize",
                "token_endpoint": "https://login.acme.example/token",
                "jwks_uri": "https://login.acme.example/jwks",
                "end_session_endpoint": end_session_endpoint,
                "discovered_at": now,
                "updated_at": now,
            },
        )


def _sso_session(tenant, email: str) -> Client:
    """A member signed in by single sign-on (the session names the issuer, and holds the ID
    token the sign-out hands the provider)."""
    client = client_for(tenant, email)
    with schema_context(tenant.schema_name):
        session = SessionStore(session_key=client.cookies["sessionid"].value)
        session[SESSION_ISSUER] = "https://login.acme.example"
        session["oidc_id_token"] = "eyJ.id.token"
        session.save()
    return client


def test_a_single_sign_on_members_pages_may_send_a_form_where_the_sign_out_redirects(acme):
    """Browsers hold the sign-out form's redirect to the provider's end-session endpoint to the
    page's form-action: the origin the workspace's configuration names now (also when it changed
    since the member signed in)."""
    _sso_configured(acme, "https://idp-old.acme.example/logout")
    client = _sso_session(acme, "owner@acme.test")
    assert policy(client.get("/"))["form-action"] == ["'self'", "https://idp-old.acme.example"]
    _sso_configured(acme, "https://login.acme-new.example/oidc/logout")
    directives = policy(client.get("/"))
    assert directives["form-action"] == ["'self'", "https://login.acme-new.example"]
    assert directives["script-src"] == ["'self'"]
    # A JSON answer has no forms: its policy stays as strict as everyone's.
    assert policy(client.get("/api/v1/workspace"))["form-action"] == ["'self'"]
    signed_out = client.post("/logout/")
    assert signed_out.status_code == 302
    assert signed_out["Location"].startswith("https://login.acme-new.example/oidc/logout?")


def test_a_password_members_pages_allow_no_provider_origin(acme):
    _sso_configured(acme, "https://idp.acme.example/logout")
    assert policy(client_for(acme, "owner@acme.test").get("/"))["form-action"] == ["'self'"]


def test_another_workspaces_session_brings_no_provider_origin_to_this_workspace(acme, globex):
    """A session cookie of acme's, sent to globex's host, is not globex's session: globex's
    pages allow no form to acme's identity provider."""
    _sso_configured(acme, "https://idp.acme.example/logout")
    stolen = _sso_session(acme, "owner@acme.test").cookies["sessionid"].value
    client = Client(HTTP_HOST=host_of(globex))
    client.cookies["sessionid"] = stolen
    response = client.get("/login/")
    assert response.status_code == 200
    assert policy(response)["form-action"] == ["'self'"]


def _inline_style_allowed(page) -> None:
    """The page's one style element carries the nonce the policy allows, and nothing else inline."""
    nonces = re.findall(rb'<style nonce="([^"]+)">', page.content)
    assert len(nonces) == 1 and page.content.count(b"<style") == 1, page.content[:300]
    assert policy(page)["style-src"] == ["'self'", f"'nonce-{nonces[0].decode()}'"]


def test_error_pages_are_styled_even_on_a_host_that_serves_no_static_file(acme, globex):
    unknown = Client(HTTP_HOST="nobody.localhost").get("/")
    assert unknown.status_code == 404
    _inline_style_allowed(unknown)
    tenant_suspend(tenant=acme, actor="operator")
    route_cache_clear()
    suspended = Client(HTTP_HOST=host_of(acme)).get("/")
    route_cache_clear()
    assert suspended.status_code == 403
    _inline_style_allowed(suspended)
    # Two answers, two nonces; a page that asked for none gets none.
    assert policy(unknown)["style-src"] != policy(Client(HTTP_HOST="nobody.localhost").get("/"))["style-src"]
    assert policy(Client(HTTP_HOST=host_of(globex)).get("/login/"))["style-src"] == ["'self'"]


def test_a_csrf_refusal_is_the_platforms_own_page(acme):
    client = Client(HTTP_HOST=host_of(acme), enforce_csrf_checks=True)
    refused = client.post("/login/", {"username": "owner@acme.test", "password": "x"})
    assert refused.status_code == 403
    assert b"csrf_failed" in refused.content
    _inline_style_allowed(refused)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://idp.example.com/logout?x=1", "https://idp.example.com"),
        ("http://127.0.0.1:8080/end", "http://127.0.0.1:8080"),
        ("https://[::1]:9443/end", "https://[::1]:9443"),
        ("https://IdP.Example.com/end", "https://idp.example.com"),
        ("https://user:secret@idp.example.com/end", "https://idp.example.com"),
        ("https://idp.example;script-src */end", None),
        ("https://idp.example 'unsafe-inline'/end", None),
        ("https://idp.example:99999/end", None),
        ("https://[zz::1]/end", None),
        ("javascript:alert(1)", None),
        ("ftp://idp.example/end", None),
        ("", None),
    ],
)
def test_an_addresss_origin_is_rebuilt_from_its_host_and_port_or_refused(url, origin):
    assert origin_of(url) == origin
