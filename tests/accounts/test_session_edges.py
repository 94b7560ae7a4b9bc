"""Crafted session cookies and sign-in links: no session and a redirect, never a 500."""

import pytest
from django.test import Client

from tests.conftest import PASSWORD, client_for

# Python's cookie parser (Django's parse_cookie) decodes octal escapes in a quoted value, so this
# plain-ASCII header reaches the session store as a key holding a NUL character.
NUL_SESSION_COOKIE = 'sessionid="\\000abcdefghijklmnopqrstuvwxyz012345"'


@pytest.mark.parametrize("host", ["acme.localhost", "localhost"])
@pytest.mark.parametrize("path", ["/", "/login/", "/api/v1/workspace"])
def test_a_session_cookie_holding_a_nul_is_treated_as_no_session_not_a_500(acme, host, path):
    """A key Django never makes is no session (PostgreSQL text refuses the NUL it reached the query with)."""
    client = Client(HTTP_HOST=host, HTTP_COOKIE=NUL_SESSION_COOKIE, raise_request_exception=False)
    response = client.get(path)
    assert response.status_code < 500, response.status_code
    # The forged cookie opens nothing: the visitor is anonymous and can still sign in.
    if host == "acme.localhost" and path == "/login/":
        signed_in = client.post("/login/", {"username": "viewer@acme.test", "password": PASSWORD})
        assert signed_in.status_code == 302


@pytest.mark.parametrize("tenant_host", [True, False])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_signed_in_user_sent_to_login_with_next_login_is_redirected_not_a_500(acme, tenant_host, method):
    """Anyone can send a signed-in member or operator the link /login/?next=/login/: it leads home."""
    client = client_for(acme, "viewer@acme.test") if tenant_host else client_for(None, "operator@platform.test")
    client.raise_request_exception = False
    response = getattr(client, method)("/login/?next=/login/")
    assert response.status_code == 302, response.status_code
    assert response["Location"] == "/"
