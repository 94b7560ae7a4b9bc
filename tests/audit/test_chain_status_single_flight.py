"""One verification of a chain's status at a time. The badge verifies the whole chain when its
cached status has expired; ten people opening a large workspace's trail at once made ten
verifications of it (a million events: ~15 s of a server process each). A badge asked for while
one runs says "verifying" and asks again shortly."""

import re

import redis
from django.conf import settings
from django.core.cache import cache
from django_tenants.utils import schema_context

from apps.audit import verify as verification
from apps.lifecycle.inventory import redis_patterns
from tests.audit.test_console import page
from tests.conftest import client_for


def _status(tenant) -> str:
    return f"audit:chain-status:{tenant.pk}"


def _badge(tenant) -> str:
    return page(client_for(tenant, f"owner@{tenant.slug}.test").get("/audit/status/"))


def test_a_badge_asked_for_while_the_chain_is_verified_says_verifying_and_does_not_verify_again(acme, monkeypatch):
    verify, asked_meanwhile = verification.audit_verify, []

    def verifying(chain):
        # Another member opens the trail while this verification reads the chain.
        asked_meanwhile.append(_badge(acme))
        return verify(chain)

    monkeypatch.setattr(verification, "audit_verify", verifying)
    with schema_context("acme"):  # the cache's keys are the workspace's (its prefix)
        cache.delete(_status(acme))
    assert 'data-intact="true"' in _badge(acme)
    assert len(asked_meanwhile) == 1
    assert 'data-testid="chain-verifying"' in asked_meanwhile[0] and 'hx-trigger="load delay:2s"' in asked_meanwhile[0]
    assert 'data-intact="true"' in _badge(acme)  # from the cache: no other verification
    assert len(asked_meanwhile) == 1
    with schema_context("acme"):
        assert cache.get(_status(acme) + ":claim") is None  # the claim went with its verification


def test_a_claim_left_by_a_process_that_died_holds_only_its_time(acme):
    with schema_context("acme"):
        cache.delete(_status(acme))
        cache.set(_status(acme) + ":claim", 1, 60)
    assert 'data-testid="chain-verifying"' in _badge(acme)
    with schema_context("acme"):
        cache.touch(_status(acme) + ":claim", 0.001)  # its time is up
    assert 'data-intact="true"' in _badge(acme)


def test_another_workspaces_verification_does_not_hold_this_ones_badge(acme, globex):
    with schema_context("acme"):
        cache.delete(_status(acme))
    with schema_context("globex"):
        cache.set(_status(globex) + ":claim", 1, 60)
        cache.set(_status(acme) + ":claim", 1, 60)  # globex's own keys, whatever id they name
    try:
        assert 'data-intact="true"' in _badge(acme)
        assert 'data-testid="chain-verifying"' in _badge(globex)
    finally:
        with schema_context("globex"):
            cache.delete_many([_status(globex) + ":claim", _status(acme) + ":claim"])


def test_a_purge_finds_the_claim_among_the_workspaces_redis_keys(acme):
    """apps/lifecycle/inventory.py: the claim is one of the workspace's keys (deleted with it)."""
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    with schema_context("acme"):
        claim = cache.make_key(_status(acme) + ":claim")
    client.set(claim, 1, ex=60)
    try:
        patterns = redis_patterns(tenant_id=acme.pk, schema="acme", hosts=["acme.localhost"])
        found = {key for pattern in patterns for key in pattern.keys(client)}
        assert claim.encode() in found
        assert not any(re.search(rb"chain-status:" + str(acme.pk).encode() + rb"\d", key) for key in found)
    finally:
        client.delete(claim)
