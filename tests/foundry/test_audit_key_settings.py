"""Audit key settings that can never sign stop the process when settings load (foundry/keys.py
`audit_key_pairs`): an id longer than a checkpoint holds, or one id in both FOUNDRY_AUDIT_SIGNING_KEYS
and FOUNDRY_AUDIT_PUBLIC_KEYS, were refused only at the first signing, and every beat pass then
logged an error for every chain and signed nothing. Found by the signing review."""

import base64
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.foundry.test_settings_switches_and_keys import production_env, settings_import


def _seed() -> tuple[str, str]:
    raw = os.urandom(32)
    public = Ed25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode().rstrip("="), base64.b64encode(public).decode()


def _cases():
    seed, _ = _seed()
    _, other_public = _seed()
    return {
        # 65 characters: AuditCheckpoint.key_id holds 64; every signing raises ImproperlyConfigured.
        "key id too long": {"FOUNDRY_AUDIT_SIGNING_KEYS": f"{'k' * 65}:{seed}"},
        # The same id in both settings: refused by _keys, at the first signing only.
        "id in both settings": {
            "FOUNDRY_AUDIT_SIGNING_KEYS": f"k1:{seed}",
            "FOUNDRY_AUDIT_PUBLIC_KEYS": f"k1:{other_public}",
        },
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_an_audit_key_configuration_that_cannot_sign_stops_the_process_at_start(case):
    result = settings_import(production_env(**_cases()[case]), "1")
    assert result.returncode != 0, f"{case}: settings loaded; refused only when the beat first signs"
    assert "ImproperlyConfigured" in result.stderr, result.stderr[-500:]
