"""Headers the API sends are declared in the OpenAPI document (found by the API-contract review):
the rate limit's on every answer and Retry-After on a 429, Idempotent-Replayed on writes'
successes, the audit export's cursor headers."""

import pytest

from apps.tenants.limits import limits_cache_clear
from tests.api.conftest import api, issue
from tests.api.openapi.oas import document
from tests.api.test_ratelimit import limit


@pytest.fixture
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


def test_429_declares_the_retry_after_and_ratelimit_headers_it_sends(acme, _limits_fresh):
    """PRODUCT.md "Controls": a refusal is 429 with `Retry-After` and the RateLimit headers, and
    every counted answer carries `RateLimit` / `RateLimit-Policy` (foundry/ratelimit.py). No
    response of the document declared a header, so a generated client had no typed way to honour
    `Retry-After`."""
    limit("acme", burst=2)
    client = api(acme, issue(acme, role="viewer", scopes=("read",)))
    statuses = [client.get("/api/v1/members") for _ in range(6)]
    refused = next(r for r in statuses if r.status_code == 429)
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(refused.headers)
    declared = document(acme)["paths"]["/api/v1/members"]["get"]["responses"]["429"].get("headers", {})
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(declared), sorted(declared)


def test_writes_declare_the_replay_header_and_the_export_its_cursor(acme):
    paths = document(acme)["paths"]
    assert "Idempotent-Replayed" in paths["/api/v1/runs"]["post"]["responses"]["201"]["headers"]
    assert "Idempotent-Replayed" not in paths["/api/v1/runs"]["get"]["responses"]["200"]["headers"]
    exported = paths["/api/v1/audit/export"]["get"]["responses"]["200"]["headers"]
    assert {"X-Audit-Chain", "X-Audit-After", "X-Audit-Through"} <= set(exported)
