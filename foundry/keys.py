"""Ed25519 keys given in settings as `key_id:<URL-safe base64 of 32 bytes>` (audit signing and
verifying keys, service-token signing keys). Parsed when settings load, so a mistyped key stops
the process at start instead of failing every signing later; and again where they are used."""

import base64
import binascii

from django.core.exceptions import ImproperlyConfigured


def b64(value: str) -> bytes:
    """URL-safe base64, its padding optional."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def key_pairs(setting: str, values) -> list[tuple[str, bytes]]:
    """`key_id:<URL-safe base64 of 32 bytes>` entries of a setting (Ed25519 seeds or public keys)."""
    pairs = []
    for number, item in enumerate(v.strip() for v in values if v.strip()):
        key_id, _, encoded = item.partition(":")
        try:
            raw = b64(encoded)
        except (binascii.Error, ValueError):
            raw = b""
        if not key_id or len(raw) != 32:
            raise ImproperlyConfigured(f"{setting}: entry {number + 1} is not key_id:<base64 of 32 bytes>.")
        pairs.append((key_id, raw))
    # One id, one key: a rotation that kept the id would sign with one key and verify with another.
    ids = [key_id for key_id, _ in pairs]
    repeated = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
    if repeated:
        raise ImproperlyConfigured(
            f"{setting}: key id {', '.join(repeated)} is listed twice; give each key an id of its own."
        )
    return pairs


AUDIT_KEY_ID_MAX = 64  # AuditCheckpoint.key_id


def audit_key_pairs(signing: list, public: list) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """FOUNDRY_AUDIT_SIGNING_KEYS and FOUNDRY_AUDIT_PUBLIC_KEYS read together: each entry a key,
    every id once across both (a rotation that kept the id would sign with one key and verify with
    another) and short enough for a checkpoint to name it. Checked when settings load: a setting
    that cannot sign would otherwise leave every chain head unsigned, found at the first signing."""
    signing_pairs = key_pairs("FOUNDRY_AUDIT_SIGNING_KEYS", signing)
    public_pairs = key_pairs("FOUNDRY_AUDIT_PUBLIC_KEYS", public)
    ids = [key_id for key_id, _ in signing_pairs + public_pairs]
    repeated = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
    if repeated:
        raise ImproperlyConfigured(
            f"FOUNDRY_AUDIT_SIGNING_KEYS / FOUNDRY_AUDIT_PUBLIC_KEYS: key id {', '.join(repeated)} is listed twice;"
            " give each key an id of its own."
        )
    too_long = [key_id for key_id in ids if len(key_id) > AUDIT_KEY_ID_MAX]
    if too_long:
        raise ImproperlyConfigured(f"Audit key ids are at most {AUDIT_KEY_ID_MAX} characters: {too_long[0][:80]!r}.")
    return signing_pairs, public_pairs
