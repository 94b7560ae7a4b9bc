"""Crafted session cookies, sign-in links and expired sessions: no session and a redirect, never a 500."""

from urllib.parse import parse_qs, urlsplit

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


def _login_next(url: str) -> str:
    """Where the sign-in page `url` leads back to."""
    parts = urlsplit(url)
    assert parts.path == "/login/", url
    return parse_qs(parts.query)["next"][0]


@pytest.mark.parametrize(
    ("current", "back_to"),
    [
        ("http://acme.localhost/runs/7/?tab=steps", "/runs/7/?tab=steps"),  # the page the fragment is on
        ("https://evil.example/phish", "/"),  # another site's URL is not followed
        (None, "/"),
    ],
)
def test_an_htmx_request_after_the_session_expired_loads_the_sign_in_page_as_a_page(acme, current, back_to):
    """A live fragment polling once the session is gone is told to load the sign-in page as a
    whole page (HX-Redirect), coming back to the page it was on — not handed a 302 that htmx
    follows, swapping the sign-in page into the timeline, with sign-in leading to the fragment."""
    headers = {"HX-Request": "true"}
    if current is not None:
        headers["HX-Current-URL"] = current
    response = Client(HTTP_HOST="acme.localhost").get("/runs/7/live/?v=abc", headers=headers)
    assert response.status_code == 200, response.status_code
    assert _login_next(response["HX-Redirect"]) == back_to
    assert not response.content

    plain = Client(HTTP_HOST="acme.localhost").get("/runs/7/")  # a page itself: the usual redirect
    assert plain.status_code == 302
    assert _login_next(plain["Location"]) == "/runs/7/"


def test_an_htmx_request_to_the_operator_console_after_the_session_expired_loads_the_sign_in_page(db):
    response = Client(HTTP_HOST="localhost").get(
        "/health/", headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/plans/"}
    )
    assert response.status_code == 200, response.status_code
    assert _login_next(response["HX-Redirect"]) == "/plans/"


ESCAPING = "charset=unicode_escape"  # "\ud800", plain ASCII, decodes to a lone surrogate


def _multipart(fields: dict, boundary: str = "BoUnDaRy") -> bytes:
    lines = []
    for name, value in fields.items():
        lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{name}"', "", value]
    return "\r\n".join([*lines, f"--{boundary}--", ""]).encode()


@pytest.mark.parametrize("host", ["acme.localhost", "localhost"])
@pytest.mark.parametrize("field", ["username", "password"])
def test_a_request_naming_a_charset_that_makes_lone_surrogates_is_refused(acme, host, field):
    """Django decodes a multipart form and a query string with any codec the Content-Type names:
    a lone surrogate then reached the password hasher, a query, the page's hidden field or the
    redirect (a 500, for anyone). Such a charset is refused before anything reads the request."""
    fields = {"username": "viewer@acme.test", "password": "x", field: "\\ud800x"}
    client = Client(HTTP_HOST=host, raise_request_exception=False)
    posted = client.generic(
        "POST", "/login/", _multipart(fields), f"multipart/form-data; boundary=BoUnDaRy; {ESCAPING}"
    )
    got = client.get("/login/?next=/%5Cud800", CONTENT_TYPE=f"text/plain; {ESCAPING}")
    api = client.get("/api/v1/workspace?filter=%5Cud800", CONTENT_TYPE=f"text/plain; {ESCAPING}")
    for response in (posted, got, api):
        assert response.status_code == 400, response.status_code
        assert b"charset_unsupported" in response.content
    # UTF-8, ASCII and Latin-1 are read as before.
    for charset in ("utf-8", "us-ascii", "latin-1"):
        form = _multipart({"username": "viewer@acme.test", "password": "wrong"})
        posted = client.generic("POST", "/login/", form, f"multipart/form-data; boundary=BoUnDaRy; charset={charset}")
        assert posted.status_code == 200, charset  # the form again: a wrong password
        assert client.get("/login/", CONTENT_TYPE=f"text/plain; charset={charset}").status_code == 200, charset
