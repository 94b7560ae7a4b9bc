"""The cache's Redis (FOUNDRY_CACHE_URL) unreachable. It holds only caches (routes, key sets,
chain status: docs/operations/scaling.md "losing the cache costs database reads";
docs/operations/disaster-recovery.md "Losing Redis": refilled from the database or the IdP), so
pages and API calls still answer — never a 500."""

import pytest

from apps.identity import jwks
from tests.api.conftest import api
from tests.conftest import free_port
from tests.identity.conftest import encryption_key, loopback_allowed  # noqa: F401 — fixtures
from tests.identity.test_login import ACCOUNTS, client_config, login, sso

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def cache_down(settings) -> None:
    """Point the Django cache at a closed local port (connection refused at once)."""
    caches = {**settings.CACHES}
    caches["default"] = {**caches["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    settings.CACHES = caches


@pytest.fixture
def provider(acme, oidc_provider_factory):
    """acme signing in through an identity provider of its own."""
    provider = oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)
    sso(acme, provider)
    return provider


def test_audit_log_page_shows_while_the_cache_redis_is_down(owner_client, settings):
    """The chain's status, cached, is verified anew."""
    cache_down(settings)
    owner_client.raise_request_exception = False
    response = owner_client.get("/audit/")
    assert response.status_code == 200, response.status_code


def test_idp_access_token_on_the_api_while_the_cache_redis_is_down(acme, provider, settings):
    """The identity provider's key set, cached, is fetched from the provider again."""
    login(acme, provider, "ada")
    token = provider.access_token("foundry-acme", "ada")
    cache_down(settings)
    jwks._parsed.clear()  # another web process: no copy of the key set of its own yet
    client = api(acme, token)
    client.raise_request_exception = False
    response = client.get("/api/v1/members")
    assert response.status_code == 200, response.content


def test_sso_sign_in_keeps_working_while_the_cache_redis_is_down(acme, provider, settings):
    """docs/limits.md: with Redis unreachable (default open_local) "sign-in keeps working"."""
    from tests.identity.test_login import finish, start

    cache_down(settings)
    client, authorize = start(acme)
    client.raise_request_exception = False
    response = finish(client, provider.follow_login(authorize, "ada"))
    assert (response.status_code, response.get("Location")) == (302, "/"), response.status_code


def test_disabling_sso_while_the_cache_redis_is_down(acme, provider, settings):
    """The rate limiter's Redis apart (FOUNDRY_RATELIMIT_REDIS_URL) and up: an owner disables SSO
    (say, the IdP is compromised) while the cache's is away; the cached key set expires by itself."""
    from tests.api.conftest import issue

    settings.FOUNDRY_RATELIMIT_REDIS_URL = settings.CACHES["default"]["LOCATION"]  # the limiter stays up
    cache_down(settings)
    client = api(acme, issue(acme, role="owner"))
    client.raise_request_exception = False
    response = client.delete("/api/v1/sso")
    assert response.status_code == 204, response.content


def test_an_export_started_beside_a_running_one_while_the_cache_is_down_is_refused(acme, settings, tmp_path):
    """Whether a running export's worker still holds its lock cannot be told while the cache's
    Redis is away (the limiter's apart and up): the export is taken for running, 409."""
    from django_tenants.utils import schema_context

    from apps.lifecycle.models import Export
    from tests.api.conftest import issue

    settings.MEDIA_ROOT = str(tmp_path / "media")
    owner = api(acme, issue(acme, role="owner"))
    owner.raise_request_exception = False
    assert owner.post("/api/v1/exports", content_type="application/json").status_code == 202
    with schema_context(acme.schema_name):
        Export.objects.update(status=Export.Status.RUNNING)
    settings.FOUNDRY_RATELIMIT_REDIS_URL = settings.CACHES["default"]["LOCATION"]  # the limiter stays up
    cache_down(settings)
    response = owner.post("/api/v1/exports", content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "export_in_progress"), response.content
