"""A Content-Type charset naming an odd codec (`idna`, `punycode`, `rot13`, `base64`) is refused
with 400 `charset_unsupported` under gunicorn (foundry.wsgi) too: Django decodes the query string
with it while it builds the request, before any middleware, so foundry.wsgi's request keeps the
charset as named and RequestCharsetMiddleware refuses it (it was a bare 500, for anyone)."""

import http.client

import pytest

CHARSETS = ["idna", "punycode", "rot13", "base64"]


def _send(port: int, charset: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(
            "GET",
            "/api/v1/workspace?filter=name%20%3D%20x",
            headers={"Host": "acme.localhost", "Content-Type": f"application/json; charset={charset}"},
        )
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def _assert_refused(status: int, content_type: str, body: bytes) -> None:
    assert status == 400, (status, content_type, body[:200])
    assert b'"charset_unsupported"' in body, body[:200]


@pytest.mark.parametrize("charset", CHARSETS)
def test_an_odd_charset_with_a_query_string_is_charset_unsupported_under_gunicorn(live_port, charset):
    _assert_refused(*_send(live_port, charset))
