"""/git/ spends a unit of the token's and the workspace's rates on every authenticated request,
as the API does (docs/limits.md, "Request rates"), and every counted answer carries the headers."""

import pytest
from django.test import Client

from apps.tenants.limits import limits_cache_clear, refusals_forget
from tests.api.conftest import api, issue
from tests.api.test_ratelimit import limit

GIT_REFS = "/git/foundry.git/info/refs?service=git-upload-pack"


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    refusals_forget()
    yield
    refusals_forget()
    limits_cache_clear()


def test_git_requests_of_a_token_without_the_read_scope_spend_its_rate(acme):
    """docs/limits.md: each authenticated request to /git/ spends one unit, as on the API, where
    a forbidden request spends its unit too. A token refused with 403 on /git/ is authenticated
    (it was looked up) yet spends nothing: it can hit the endpoint without any limit."""
    limit("acme", burst=2)  # a credential's burst: 1
    token = issue(acme, name="runner", scopes=("run",))
    # Control: on the API the same token's forbidden requests are counted: 403, then 429.
    assert [api(acme, token).get("/api/v1/domains").status_code for _ in range(2)] == [403, 429]
    other = issue(acme, name="runner-2", scopes=("run",))
    git = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {other}")
    statuses = [git.get(GIT_REFS).status_code for _ in range(5)]
    assert 429 in statuses, statuses


def test_git_responses_carry_the_ratelimit_headers(acme):
    """docs/limits.md: every counted response carries RateLimit-Policy and RateLimit, on /git/
    as on /api/ and /mcp."""
    from tests.catalog.conftest import example, publish

    publish(acme, example("domains/finance.yaml"))
    limit("acme", burst=20)
    git = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {issue(acme, scopes=('read',))}")
    response = git.get(GIT_REFS)
    assert response.status_code == 200
    assert response.get("RateLimit-Policy") == '"default";q=1;w=2'  # a credential's half of 1/s
    assert (response.get("RateLimit") or "").startswith('"default";r=9;t=')
