"""Provider credential fixtures: an encryption key of the test's own, and a fake model server."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django_tenants.utils import schema_context

from apps.providers.models import ProviderCredential
from apps.providers.services import credential_set
from tests.conftest import tenant_user
from tests.providers.fake_models import FakeModelServer

KEY = "sk-proj-acme-9f8e7d6c5b4a3f2e1d0c"
GLOBEX_KEY = "sk-proj-globex-0a1b2c3d4e5f6a7b8c9d"


@pytest.fixture(autouse=True)
def encryption_key(settings) -> str:
    key = Fernet.generate_key().decode()
    settings.FOUNDRY_ENCRYPTION_KEYS = [key]
    return key


@pytest.fixture
def model_server():
    server = FakeModelServer()
    yield server
    server.close()


@pytest.fixture
def loopback_allowed(settings):
    """The operator lets providers reach loopback (as for a self-hosted model server)."""
    import ipaddress

    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def keys(settings, loopback_allowed):
    """For runs against the fake model server: loopback reachable and no retries (one call per
    answer queued); the encryption key is the test's own (above)."""
    settings.FOUNDRY_PROVIDER_MAX_RETRIES = 0


@pytest.fixture
def server(model_server):
    """The fake model server, as the run tests name it."""
    return model_server


def manifest(provider: str = "openai", name: str = "gpt-4o-mini", **parameters) -> dict:
    """An agent manifest (as validated) whose model is `provider`/`name` with `parameters`."""
    return {
        "apiVersion": "foundry/v1",
        "kind": "Agent",
        "metadata": {"name": "triage"},
        "spec": {"model": {"provider": provider, "name": name, "parameters": parameters}},
    }


def set_credential(tenant, provider: str = "openai", *, email: str | None = None, **fields) -> ProviderCredential:
    """Store a credential in `tenant` as its owner (or `email`)."""
    fields.setdefault("api_key", KEY)
    actor = tenant_user(tenant, email or f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        return credential_set(actor=actor, provider=provider, **fields)


def stored(tenant, provider: str = "openai") -> ProviderCredential | None:
    with schema_context(tenant.schema_name):
        return ProviderCredential.objects.filter(provider=provider).first()


def raw_rows(tenant) -> list[tuple]:
    """What the database holds, read with SQL (not through the model)."""
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT provider, api_key_encrypted, api_key_last4 FROM providers_providercredential")
        return cursor.fetchall()
