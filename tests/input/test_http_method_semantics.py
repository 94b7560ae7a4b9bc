"""HTTP method semantics across the console, the API and the sign-in pages.

PRODUCT.md: "Bad input gets a clear error and changes nothing". RFC 9110 §9.3.2: HEAD is GET
without the body — a server must not act differently on it, and a resource that answers GET
answers HEAD. The platform's own convention (tests/input/test_console_methods.py,
foundry/errors.MethodNotAllowedMiddleware): a console page answers a method it does not serve
with 405, the platform's page and an `Allow` header.
"""

import pytest
from django.test import Client

from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for


def test_head_on_the_audit_export_records_no_export(acme):
    """HEAD /api/v1/audit/export sends no event and appends none: it used to append `audit.export`
    to the chain, claiming an export that never happened. The workspace export download already
    skipped its record on HEAD ("a HEAD (a link checker) takes nothing away")."""
    client = api(acme, issue(acme))
    before = len(audit_events("acme", action="audit.export"))
    response = client.head("/api/v1/audit/export")
    assert response.status_code == 200
    assert len(audit_events("acme", action="audit.export")) == before


def test_put_on_the_sign_in_page_is_refused_and_records_no_failed_sign_in(acme):
    """PUT /login/ is a 405 (Allow: GET, HEAD, POST), as on every other console page, with nothing
    recorded. Django's form view took it for a sign-in POST with an empty form: 200, a sign-in
    attempt spent and `auth.login.failed` appended for a sign-in nobody attempted."""
    anonymous = Client(HTTP_HOST="acme.localhost")
    before = len(audit_events("acme", action="auth.login.failed"))
    response = anonymous.put(
        "/login/", "username=owner@acme.test&password=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 405, response.status_code
    assert len(audit_events("acme", action="auth.login.failed")) == before


TENANT_GET_POST_PAGES = ["/settings/sso/", "/settings/retention/", "/settings/data-export/", "/settings/audit-sinks/"]


@pytest.mark.parametrize("path", TENANT_GET_POST_PAGES)
def test_console_pages_that_answer_get_answer_head(acme, path):
    """A page that answers GET answers HEAD alike (and does not take it for a POST): these were
    `require_http_methods(["GET", "POST"])`, a 405 to HEAD."""
    client = client_for(acme, "owner@acme.test")
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200


@pytest.mark.django_db
def test_operator_import_page_answers_head():
    """/tenants/import/ (operator host) answers HEAD as GET, like every other operator page."""
    client = client_for(None, "operator@platform.test")
    assert client.get("/tenants/import/").status_code == 200
    assert client.head("/tenants/import/").status_code == 200


@pytest.mark.parametrize("method", ["put", "delete", "trace"])
def test_invitation_page_refuses_methods_it_does_not_serve(acme, method):
    """/invite/<uidb64>/<token>/ refuses a method it does not serve with 405 and the platform's page:
    Django's PasswordResetConfirmView checked the link first and rendered the "invalid link" page
    with 200 for any method."""
    response = getattr(Client(HTTP_HOST="acme.localhost"), method)("/invite/abc/def/")
    assert response.status_code == 405, response.status_code
