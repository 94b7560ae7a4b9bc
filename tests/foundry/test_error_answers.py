"""Django's own refusals in the production settings the deployment guide asks for
(docs/operations/deployment.md, "Configuration": FOUNDRY_SSL_REDIRECT=1 among them) carry the
security headers and answer as the platform does (JSON under /api/, its page with its nonce), and
README names every variable bin/dev reads."""

import re

import pytest
from django.test import Client

from tests.conftest import ROOT, client_for, host_of

SECURITY_HEADERS = ("X-Frame-Options", "Content-Security-Policy", "X-Content-Type-Options", "Cache-Control")


def test_a_host_refused_by_the_https_redirect_still_carries_the_security_headers(db, settings):
    """With FOUNDRY_SSL_REDIRECT=1 (required in production), a plain-HTTP request whose Host is not
    in ALLOWED_HOSTS (scanners, direct-IP access) is refused with 400 by SecurityMiddleware's
    redirect, which calls request.get_host(); that answer too carries CSP, X-Frame-Options, nosniff
    and no-store (docs/operations/deployment.md, "Browser security headers"), as the 404 for the
    same host without the redirect does."""
    settings.SECURE_SSL_REDIRECT = True
    response = Client(HTTP_HOST="scanner.example").get("/")
    assert response.status_code == 400
    missing = [name for name in SECURITY_HEADERS if name not in response.headers]
    assert not missing, f"the 400 for a disallowed host lacks {missing}"


def test_a_host_refused_by_the_https_redirect_is_answered_in_json_under_api(db, settings):
    """An /api/ request is answered in JSON with a stable code (PRODUCT.md "Errors are JSON with a
    stable code and message"; foundry/errors.py wants_json), also Django's own 400."""
    settings.SECURE_SSL_REDIRECT = True
    response = Client(HTTP_HOST="scanner.example").get("/api/v1/agents")
    assert response.status_code in (400, 404)
    assert response["Content-Type"].startswith("application/json"), (
        f"{response.status_code} {response['Content-Type']}: {response.content[:80]!r}"
    )


def test_a_400_error_page_style_is_allowed_by_its_nonce(acme):
    """docs/operations/deployment.md: "an error page's one inline style is allowed by that
    response's nonce". A console form post with more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields
    (TooManyFieldsSent, read by CsrfViewMiddleware) gets the 400 page, its style allowed by the
    response's nonce as the 404, 500 and CSRF pages' are."""
    client = Client(HTTP_HOST=host_of(acme), enforce_csrf_checks=True, raise_request_exception=False)
    client.get("/login/")
    data = {f"field{i}": "x" for i in range(1200)}
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    response = client.post("/login/", data)
    assert response.status_code == 400
    policy = response.headers.get("Content-Security-Policy", "")
    style = re.search(r"<style([^>]*)>", response.content.decode())
    assert style, "the 400 page has no inline style any more"
    nonce = re.search(r'nonce="([^"]+)"', style.group(1))
    assert nonce and f"'nonce-{nonce.group(1)}'" in policy, (
        f"400 page's <style{style.group(1)}> is blocked by the policy's style-src: {policy}"
    )


@pytest.mark.parametrize(
    ("on_tenant", "email", "method", "path"),
    [
        (True, "owner@acme.test", "post", "/audit/"),  # a require_safe page
        (True, "owner@acme.test", "post", "/settings/data-export/rows/"),
        (False, "operator@platform.test", "get", "/tenants/new/"),  # a require_POST action
        (False, "operator@platform.test", "post", "/health/"),
    ],
    ids=["tenant-audit", "tenant-export-rows", "operator-tenant-new", "operator-health"],
)
def test_a_console_page_refusing_a_method_answers_the_platforms_page_with_its_code(
    acme, on_tenant, email, method, path
):
    """A console view's refusal of a method was Django's bare 405 (text/html, an empty body, no
    code); it is the platform's error page naming `405 method_not_allowed`, or JSON for a client
    asking for it, as every other refusal is, the Allow header kept."""
    client = client_for(acme if on_tenant else None, email)
    response = getattr(client, method)(path)
    assert response.status_code == 405 and response["Allow"]
    assert re.search(r"<code>405 method_not_allowed</code>", response.content.decode())
    answer = getattr(client, method)(path, HTTP_ACCEPT="application/json")
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"


def test_the_api_root_without_its_slash_answers_json(acme):
    """/api (no slash) was the HTML 404 page: under /api every answer is JSON with a code."""
    response = Client(HTTP_HOST="acme.localhost").get("/api")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_readme_lists_every_variable_bin_dev_reads():
    """README.md ("Configuration") lists the variables the platform and bin/dev read; bin/dev reads
    FOUNDRY_BACKUP_DB_PASSWORD (generated into .data/env, and the password in the default
    FOUNDRY_BACKUP_DATABASE_URL it exports), like FOUNDRY_DB_PASSWORD which the README lists."""
    script = (ROOT / "bin" / "dev").read_text()
    readme = (ROOT / "README.md").read_text()
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", configuration))
    read = set(re.findall(r"\$\{?(FOUNDRY_[A-Z0-9_]+)", script)) | set(re.findall(r"\^(FOUNDRY_[A-Z0-9_]+)=", script))
    read -= {"FOUNDRY_PROBE_URL", "FOUNDRY_PSQL_PW"}  # bin/dev's own, set inline for one child process
    assert not sorted(read - documented), f"read by bin/dev but not in README: {sorted(read - documented)}"
