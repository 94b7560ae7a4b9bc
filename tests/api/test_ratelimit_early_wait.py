"""An early refusal (foundry/api/access.py ApiRefusalMiddleware) tells the longer wait of the
request's two buckets, also one this process's last admission left empty (docs/limits.md)."""

import time

import pytest
from django.core.management import call_command

from apps.tenants.limits import limits_cache_clear, refusals_forget
from tests.api.conftest import api, issue

WORKSPACE = "/api/v1/workspace"


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    refusals_forget()
    yield
    limits_cache_clear()
    refusals_forget()


def limit(slug: str, *, rps: int = 1, burst: int) -> None:
    call_command("tenant_limits", slug, "--requests-per-second", str(rps), "--burst", str(burst))


def test_an_early_refusal_tells_a_retry_after_after_which_the_request_is_admitted(acme):
    """docs/limits.md: a refused request's headers are "of both, the one with the longer wait", and
    the early refusal (ApiRefusalMiddleware) answers "with the same body and headers as the
    limiter's refusal". Token A has spent its own burst (admitted) and token B's refusal leaves the
    workspace's refusal standing (1 s): A's next request, answered early, tells A's own wait (about
    2 s), after which it is admitted. It used to tell the workspace's 1 s alone, and a client
    honouring it was refused again."""
    limit("acme", burst=2)  # workspace 1/s burst 2; each token 1 every 2 s, burst 1
    a, b = api(acme, issue(acme, name="a")), api(acme, issue(acme, name="b"))
    assert a.get(WORKSPACE).status_code == 200  # A's burst spent
    assert b.get(WORKSPACE).status_code == 200  # the workspace's burst spent
    assert b.get(WORKSPACE).status_code == 429  # both refuse: the workspace's refusal is remembered
    refused = a.get(WORKSPACE)
    assert refused.status_code == 429
    time.sleep(int(refused["Retry-After"]) + 0.05)
    assert a.get(WORKSPACE).status_code == 200, f"refused again after Retry-After {refused['Retry-After']}"
