"""A workspace imported from an archive holds its provider credentials with the key blanked
(docs/export.md: "Every encrypted column ... is exported empty"). The rest of the platform must
treat such a credential as "no key stored", not as a secret encrypted under a lost key."""

import io
import uuid

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage

from apps.lifecycle.archive import tenant_export, tenant_import
from apps.providers.models import ProviderCredential
from apps.providers.services import credential_set, provider_settings_for
from foundry.runtime.providers import ProviderError, provider_create
from tests.audit.conftest import SIGNING_SEED
from tests.conftest import tenant_user

KEY = "sk-proj-review-9f8e7d6c5b4a3f2e1d0c"


@pytest.fixture(autouse=True)
def keys(settings):
    key = Fernet.generate_key().decode()
    settings.FOUNDRY_ENCRYPTION_KEYS = [key]
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    return key


@pytest.fixture
def imported(fresh_tenant, db):
    """A copy of `fresh_tenant` (which has an openai credential), imported under a new slug."""
    owner = tenant_user(fresh_tenant, f"owner@{fresh_tenant.slug}.test")
    with schema_context(fresh_tenant.schema_name):
        credential_set(actor=owner, provider="openai", api_key=KEY)
    out = io.BytesIO()
    tenant_export(fresh_tenant, out)
    new = tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")
    with schema_context(new.schema_name):
        credential = ProviderCredential.objects.get(provider="openai")
    assert credential.api_key_encrypted == ""  # as documented: the secret stayed behind
    return new


def test_key_rotation_does_not_fail_on_a_credential_whose_key_an_import_left_behind(imported, settings, keys, capsys):
    """Key rotation skips a credential whose key an import left behind (nothing to re-encrypt), as it
    skips blank SSO and sink secrets: one imported workspace does not make every rotation fail."""
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), keys]
    try:
        call_command("rotate_encryption_keys")
    except CommandError as exc:
        pytest.fail(f"rotation failed on the import's blank credential: {exc}")
    out = capsys.readouterr().out
    assert out.strip().endswith("0 undecryptable."), out


def test_a_run_on_an_imported_credential_says_the_key_is_missing_not_that_a_key_was_lost(imported):
    """A run on such a credential is told the key is missing (`provider_credentials_missing`, what
    docs/providers.md names for a provider without a key), not that the platform lost a key."""
    manifest = {
        "apiVersion": "foundry/v1",
        "kind": "Agent",
        "metadata": {"name": "triage"},
        "spec": {"model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {}}},
    }
    with schema_context(imported.schema_name):
        provider_settings = provider_settings_for(manifest)
    assert provider_settings.credentials["api_key"] == ""
    with pytest.raises(ProviderError) as refused:
        provider_create("openai", provider_settings).complete([HumanMessage("hi")], [], timeout=5)
    assert refused.value.code == "provider_credentials_missing"
