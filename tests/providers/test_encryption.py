"""Keys at rest: encrypted with FOUNDRY_ENCRYPTION_KEYS, rotated by rotate_encryption_keys."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.providers.encryption import PLACED, SecretUndecryptable, secret_decrypt, secret_encrypt, secret_is_current
from apps.providers.services import provider_settings_for
from foundry.errors import ServiceError
from tests.providers.conftest import GLOBEX_KEY, KEY, manifest, raw_rows, set_credential, stored


def _key(provider: str) -> str:
    return provider_settings_for(manifest(provider)).credentials["api_key"]


def rotate(capsys) -> str:
    call_command("rotate_encryption_keys")
    return capsys.readouterr().out


def test_the_database_holds_ciphertext_not_the_key(acme, encryption_key):
    set_credential(acme)
    ((provider, ciphertext, last4),) = raw_rows(acme)
    assert provider == "openai" and last4 == KEY[-4:]
    assert KEY not in ciphertext and KEY[:-4] not in ciphertext
    opened = Fernet(encryption_key.encode()).decrypt(ciphertext.encode())
    place = f"{acme.schema_name}/providers_providercredential/openai"
    assert opened == PLACED + place.encode() + b"\x00" + KEY.encode()


def test_the_same_key_encrypts_differently_each_time(acme):
    assert secret_encrypt(KEY, place="acme/t/1") != secret_encrypt(KEY, place="acme/t/1")


def test_rotation_re_encrypts_under_the_new_key_and_is_idempotent(acme, globex, settings, encryption_key, capsys):
    old = encryption_key
    set_credential(acme)
    set_credential(acme, "anthropic", api_key="sk-ant-acme-000011112222")
    set_credential(globex, api_key=GLOBEX_KEY)
    before = {row[0]: row[1] for row in raw_rows(acme)}
    new = Fernet.generate_key().decode()
    settings.FOUNDRY_ENCRYPTION_KEYS = [new, old]  # the new key first; the old one still decrypts
    assert not secret_is_current(before["openai"], place=f"{acme.schema_name}/providers_providercredential/openai")

    out = rotate(capsys)
    assert "acme: 2 re-encrypted, 0 already current, 0 undecryptable" in out
    assert "globex: 1 re-encrypted" in out
    assert out.strip().endswith("3 re-encrypted, 0 already current, 0 undecryptable.")
    after = {row[0]: row[1] for row in raw_rows(acme)}
    assert after["openai"] != before["openai"]
    assert Fernet(new.encode()).decrypt(after["openai"].encode()).endswith(b"\x00" + KEY.encode())

    assert rotate(capsys).strip() == "0 re-encrypted, 3 already current, 0 undecryptable."
    settings.FOUNDRY_ENCRYPTION_KEYS = [new]  # the old key removed: everything still opens
    with schema_context(acme.schema_name):
        assert _key("openai") == KEY and _key("anthropic") == "sk-ant-acme-000011112222"
    with schema_context(globex.schema_name):
        assert _key("openai") == GLOBEX_KEY


def test_a_key_removed_before_rotating_leaves_credentials_undecryptable(acme, settings, capsys):
    set_credential(acme)
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with schema_context(acme.schema_name), pytest.raises(SecretUndecryptable) as info:
        provider_settings_for(manifest())
    assert (info.value.code, info.value.status) == ("secret_undecryptable", 503)
    assert KEY not in info.value.message
    with pytest.raises(CommandError) as failed:
        call_command("rotate_encryption_keys")
    assert "acme/openai" in str(failed.value)
    assert "0 re-encrypted, 0 already current, 1 undecryptable." in capsys.readouterr().out
    assert stored(acme) is not None  # nothing was thrown away


def test_garbage_is_undecryptable_not_a_crash(settings):
    for token in ("", "not-a-token", "é"):
        with pytest.raises(SecretUndecryptable):
            secret_decrypt(token, place=None)


def test_without_any_key_nothing_is_stored(acme, settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = []
    with pytest.raises(ServiceError) as info:
        set_credential(acme)
    assert (info.value.code, info.value.status) == ("encryption_not_configured", 503)
    assert stored(acme) is None
    with pytest.raises(CommandError):
        call_command("rotate_encryption_keys")


def test_rotation_re_encrypts_audit_sink_webhook_secrets_too(acme, settings, encryption_key):
    """The same keys encrypt sinks' webhook secrets: left behind, removing the old key (step 4)
    would break every signed delivery."""
    import ipaddress

    from apps.audit.delivery import SinkFields, audit_sink_set, sink_secret_place
    from apps.audit.models import AuditSink
    from apps.audit.scope import rls_scope

    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    fields = SinkFields(kind="webhook", url="https://127.0.0.1:9/in", secret="s3cret-s3cret-s3cret")
    audit_sink_set(tenant=acme, name="hook", fields=fields, actor="test")
    new = Fernet.generate_key().decode()
    settings.FOUNDRY_ENCRYPTION_KEYS = [new, encryption_key]
    call_command("rotate_encryption_keys")
    settings.FOUNDRY_ENCRYPTION_KEYS = [new]
    with rls_scope(acme.pk):
        sink = AuditSink.objects.get(tenant_id=acme.pk, name="hook")
    assert secret_decrypt(sink.secret_encrypted, place=sink_secret_place(sink)) == "s3cret-s3cret-s3cret"
