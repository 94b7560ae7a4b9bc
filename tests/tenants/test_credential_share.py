"""docs/limits.md ("Request rates"): a credential gets half the workspace's rate and burst, so one
runaway script leaves the other half to the workspace's other clients — exactly half: its rate is
the workspace's requests per second over 2 s. It was half rounded up to whole requests a second,
more than half for any odd rate (the free plan's 5/s gave 3/s) and all of a 1/s workspace, where
one script pacing itself at its own limit starved every other client."""

import time
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from apps.tenants.limits import limits_cache_clear, limits_for, refusals_forget, request_admit


@pytest.fixture(autouse=True)
def _limits_fresh():
    limits_cache_clear()
    refusals_forget()
    yield
    limits_cache_clear()
    refusals_forget()


def _per_second(rate) -> float:
    return rate.limit / rate.period


@pytest.mark.parametrize("rps, burst", [(1, 2), (5, 20)])
def test_a_credential_gets_at_most_half_the_workspace_rate(acme, rps, burst):
    """The credential's sustained rate is half the workspace's."""
    call_command("tenant_limits", "acme", "--requests-per-second", str(rps), "--burst", str(burst))
    limits = limits_for(acme.pk)
    assert _per_second(limits.credential_rate()) <= 0.5 * _per_second(limits.tenant_rate()), (
        limits.credential_rate(),
        limits.tenant_rate(),
    )


def test_one_runaway_credential_does_not_starve_the_workspaces_other_clients(acme):
    """Workspace at 1 request/s (burst 2). Client A asks once a second, client B right after each
    time: B keeps the other half, admitted at least once (A was admitted every time, B never)."""
    call_command("tenant_limits", "acme", "--requests-per-second", "1", "--burst", "2")
    runaway, other = SimpleNamespace(pk=900001), SimpleNamespace(pk=900002)
    assert request_admit(tenant_id=acme.pk, principal=runaway, write=False).allowed
    assert request_admit(tenant_id=acme.pk, principal=other, write=False).allowed
    other_admitted = 0
    for _ in range(3):
        time.sleep(1.05)
        request_admit(tenant_id=acme.pk, principal=runaway, write=False)
        refusals_forget()
        other_admitted += request_admit(tenant_id=acme.pk, principal=other, write=False).allowed
        refusals_forget()
    assert other_admitted >= 1, "the runaway credential took the whole workspace rate"
