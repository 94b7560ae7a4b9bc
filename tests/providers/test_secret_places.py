"""A secret opens only in the row it was sealed for (apps/providers/encryption.py `place`).

Fernet has no associated data, and nothing tied a ciphertext to its workspace, table or row:
workspace A's provider key, copied into B's row by someone with write access to B's rows (no
key needed), opened in B and was sent to the base URL B had chosen. Found by the secrets review.
A secret sealed before places were still opens, and rotate_encryption_keys seals it for its row."""

import ipaddress

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.audit.delivery import SinkFields, audit_sink_set, sink_secret_place
from apps.audit.models import AuditSink
from apps.audit.scope import rls_scope
from apps.identity.services import sso_secret_place
from apps.providers.encryption import SecretUndecryptable, secret_decrypt, secret_is_current
from apps.providers.models import ProviderCredential
from apps.providers.services import provider_settings_for
from tests.providers.conftest import GLOBEX_KEY, KEY, manifest, set_credential, stored


def _copy_key(source, target) -> None:
    ciphertext = stored(source).api_key_encrypted
    with schema_context(target.schema_name):
        ProviderCredential.objects.filter(provider="openai").update(api_key_encrypted=ciphertext)


def _globex_key() -> str:
    return provider_settings_for(manifest()).credentials["api_key"]


def test_a_provider_key_copied_into_another_workspace_does_not_open_there(acme, globex):
    set_credential(acme)
    set_credential(globex, api_key=GLOBEX_KEY)
    _copy_key(acme, globex)
    with schema_context(globex.schema_name), pytest.raises(SecretUndecryptable) as refused:
        _globex_key()
    assert refused.value.code == "secret_undecryptable" and KEY not in refused.value.message
    with schema_context(acme.schema_name):
        assert provider_settings_for(manifest()).credentials["api_key"] == KEY  # where it was sealed


def test_an_sso_secret_or_sink_secret_opens_only_in_its_own_row(acme, globex, settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    for tenant in (acme, globex):
        fields = SinkFields(kind="webhook", url="https://127.0.0.1:9/in", secret=f"{tenant.slug}-s3cret-s3cret")
        audit_sink_set(tenant=tenant, name="hook", fields=fields, actor="test")
    with rls_scope(acme.pk):
        acmes = AuditSink.objects.get(tenant_id=acme.pk, name="hook")
    with rls_scope(globex.pk):
        globexs = AuditSink.objects.get(tenant_id=globex.pk, name="hook")
    assert secret_decrypt(acmes.secret_encrypted, place=sink_secret_place(acmes)) == "acme-s3cret-s3cret"
    with pytest.raises(SecretUndecryptable):
        secret_decrypt(acmes.secret_encrypted, place=sink_secret_place(globexs))
    with schema_context(globex.schema_name), pytest.raises(SecretUndecryptable):
        secret_decrypt(acmes.secret_encrypted, place=sso_secret_place())


def test_a_secret_sealed_before_places_opens_and_rotation_seals_it_for_its_row(acme, globex, encryption_key):
    set_credential(acme)
    set_credential(globex, api_key=GLOBEX_KEY)
    legacy = Fernet(encryption_key.encode()).encrypt(KEY.encode()).decode()  # as sealed before places
    with schema_context(acme.schema_name):
        ProviderCredential.objects.filter(provider="openai").update(api_key_encrypted=legacy)
        assert provider_settings_for(manifest()).credentials["api_key"] == KEY
    place = f"{acme.schema_name}/{ProviderCredential._meta.db_table}/openai"
    assert not secret_is_current(legacy, place=place)
    call_command("rotate_encryption_keys")
    assert secret_is_current(stored(acme).api_key_encrypted, place=place)
    _copy_key(acme, globex)
    with schema_context(globex.schema_name), pytest.raises(SecretUndecryptable):
        _globex_key()
