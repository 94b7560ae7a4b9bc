"""/mcp's plain-HTTP redirect (foundry/asgi.py `_plain_http_redirect`) follows the host rules every
other path follows: no Location built from a host outside ALLOWED_HOSTS, and a client's own
X-Forwarded-Proto not taken for the proxy's (docs/tenancy.md, README FOUNDRY_BEHIND_TLS_PROXY)."""

import ipaddress
import json

import pytest
from django.test import Client

from tests.asgi_calls import asgi_post


def _application():
    import foundry.asgi

    return foundry.asgi.application


@pytest.mark.parametrize("host", ["evil.com", "acme.localhost.evil.com", "127.0.0.1:8000"])
def test_mcp_https_redirect_is_never_built_from_a_host_outside_allowed_hosts(db, settings, host):
    """docs/tenancy.md: with FOUNDRY_SSL_REDIRECT on, a plain-HTTP request for a host outside
    ALLOWED_HOSTS is a 400 (Django's redirect needs an allowed host); docs/operations/serving.md:
    the /mcp gateway answers 421 for a host that is no workspace. /mcp instead answers 308 with
    `Location: https://<whatever Host the client sent>/mcp` — a link built from an attacker-chosen
    host, and a different answer than the console/API give for the same request."""
    settings.SECURE_SSL_REDIRECT = True
    django_answer = Client(HTTP_HOST=host, raise_request_exception=False).post("/api/v1/workspace")
    assert django_answer.status_code == 400  # the WSGI/Django side refuses the host

    answer = asgi_post(_application(), host, b"{}")

    assert "location" not in answer.headers, answer.headers.get("location")
    assert answer.status in (400, 421), (answer.status, json.loads(answer.body))


def test_mcp_https_redirect_ignores_x_forwarded_proto_from_an_untrusted_peer(acme, settings):
    """README (FOUNDRY_BEHIND_TLS_PROXY): with FOUNDRY_TRUSTED_PROXIES set, X-Forwarded-Proto is
    trusted from those addresses only; from any other peer it is dropped (foundry/proxies.py).
    The console and API do so (plain HTTP from 127.0.0.1 is redirected), but /mcp's redirect check
    (`foundry/asgi.py` `_secure`) reads the raw header, so a direct client claiming https is
    served over plain HTTP instead of being sent to HTTPS."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.FOUNDRY_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]  # asgi_post's peer is 127.0.0.1
    django_answer = Client(HTTP_HOST="acme.localhost", HTTP_X_FORWARDED_PROTO="https").get("/api/v1/workspace")
    assert django_answer.status_code == 301  # the header was dropped: still redirected

    answer = asgi_post(_application(), "acme.localhost", b"{}", [(b"x-forwarded-proto", b"https")])

    assert answer.status == 308, (answer.status, answer.body[:200])
    assert answer.headers["location"] == "https://acme.localhost/mcp"
