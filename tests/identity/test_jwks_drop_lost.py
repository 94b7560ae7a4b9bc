"""Saving the SSO settings again is the documented way to stop trusting a key the provider
withdrew (docs/sso.md). The shared cache's copy of the key set names the configuration it was
fetched under, so a copy fetched before the save is not used, even when the save could not reach
Redis to delete it. Before, the drop was a Redis DELETE alone, its failure swallowed: once Redis
answered again, every process trusted the withdrawn key from the shared copy for up to an hour
(found by the two-store review)."""

import ipaddress

import pytest

from tests.api.conftest import api
from tests.identity.test_login import ACCOUNTS, client_config, login, sso
from tests.oidc_provider import generate_key


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    """The operator lets every tenant reach loopback (where the test IdP listens)."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def shared(oidc_provider_factory, acme, globex):
    return oidc_provider_factory(clients=[client_config(acme), client_config(globex)], accounts=ACCOUNTS)


def test_a_withdrawn_key_stays_trusted_when_the_drop_at_save_could_not_reach_redis(acme, shared, settings):
    sso(acme, shared)
    login(acme, shared, "ada")
    old = shared.access_token("foundry-acme", "ada")
    assert api(acme, old).get("/api/v1/members").status_code == 200  # the key set is cached now
    shared.restart(keys=[generate_key("RS256")])  # the provider withdraws its (compromised) key

    # An admin saves the settings again while the cache's Redis cannot be reached (a blip, a
    # failover): nothing else is stopped, only the Django cache points at a closed port.
    real = settings.CACHES
    settings.CACHES = {"default": {**real["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    sso(acme, shared)  # succeeds: the admin is told the settings are saved
    settings.CACHES = real  # Redis answers again

    response = api(acme, old).get("/api/v1/members")
    assert response.status_code == 401, (
        "a token signed with the key the provider withdrew is still accepted after the admin saved "
        "the SSO settings again (the cached key set's drop was lost; it lives on for up to an hour)"
    )
    assert response.json()["error"]["code"] == "token_key_unknown"
