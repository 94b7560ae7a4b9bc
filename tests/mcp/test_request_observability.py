"""/mcp is served by foundry.asgi outside Django's middleware stack, and still gets what every
other request gets there (docs/observability.md): it is counted in the RED metrics
(`foundry_http_requests_total`), its answer carries an `X-Request-ID` (which the gateway lists
among the CORS-exposed headers) and the security headers.

Driven in-process through the ASGI application (foundry/asgi.py), with an unauthenticated POST
the gateway refuses (401) before any tool runs."""

import json

from foundry.metrics import HTTP_REQUESTS
from tests.asgi_calls import asgi_post


def _requests_total() -> float:
    return sum(
        sample.value
        for metric in HTTP_REQUESTS.collect()
        for sample in metric.samples
        if sample.name == "foundry_http_requests_total"
    )


def _asgi_post(path: str, host: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    from foundry.asgi import application

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    answer = asgi_post(application, host, body, raw, path=path)
    return answer.status, answer.headers


def test_an_mcp_request_is_counted_in_the_request_metrics(acme):
    before = _requests_total()
    status, _headers = _asgi_post("/mcp", "acme.localhost")
    assert status == 401
    assert _requests_total() == before + 1, "the /mcp request is missing from foundry_http_requests_total"


def test_an_mcp_answer_carries_its_request_id(acme):
    status, headers = _asgi_post("/mcp", "acme.localhost", {"X-Request-ID": "mcp-client-req-0001"})
    assert status == 401
    assert headers.get("x-request-id") == "mcp-client-req-0001"


def test_an_mcp_answer_carries_the_security_headers(acme):
    """/mcp is answered outside Django's middleware, but with the same security headers."""
    status, headers = _asgi_post("/mcp", "acme.localhost")
    assert status == 401
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["referrer-policy"] == "same-origin"
    assert "no-store" in headers["cache-control"]
    assert "strict-transport-security" not in headers  # not configured here


def test_an_mcp_answer_over_tls_carries_hsts_when_configured(acme, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    _status, plain = _asgi_post("/mcp", "acme.localhost")
    assert "strict-transport-security" not in plain
    _status, headers = _asgi_post("/mcp", "acme.localhost", {"X-Forwarded-Proto": "https"})
    assert headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
