"""A request refused for its role or scope (403) spends its credential's rate like any other
authenticated request: it cannot write access.denied events at any rate."""

import pytest

from apps.tenants.limits import limits_cache_clear
from tests.api.conftest import api, issue
from tests.api.test_ratelimit import limit
from tests.conftest import audit_events


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    yield
    limits_cache_clear()


def test_a_forbidden_request_by_an_authenticated_token_spends_its_rate(acme):
    limit("acme", burst=2)  # a credential's burst: 1
    viewer = api(acme, issue(acme, role="viewer", name="viewer"))
    before = len(audit_events(acme.schema_name, action="access.denied"))
    statuses = [viewer.get("/api/v1/tokens").status_code for _ in range(6)]
    flooded = len(audit_events(acme.schema_name, action="access.denied")) - before
    assert 429 in statuses, (statuses, f"{flooded} access.denied audit events written")
