"""The platform's audit signing keys: Ed25519, named by a key id.

FOUNDRY_AUDIT_SIGNING_KEYS lists `key_id:private key` pairs (the private key as URL-safe base64
of its 32-byte seed); the first signs new checkpoints, every one verifies. Rotation: put a new
key first; keep the old one listed (or move its public half to FOUNDRY_AUDIT_PUBLIC_KEYS,
`key_id:public key`) for as long as its checkpoints must verify. Anyone can verify with the
public keys alone (`public_keys()`, published at /.well-known/foundry-audit-keys.json).
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.audit.chain import checkpoint_message
from foundry.errors import ServiceError
from foundry.keys import AUDIT_KEY_ID_MAX, audit_key_pairs


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode("ascii")


KEY_ID_MAX = AUDIT_KEY_ID_MAX


@lru_cache(maxsize=4)
def _keys(private: tuple[str, ...], public: tuple[str, ...], secret: str, debug: bool):
    signing_pairs, public_pairs = audit_key_pairs(list(private), list(public))
    signing = [SigningKey(key_id, Ed25519PrivateKey.from_private_bytes(raw)) for key_id, raw in signing_pairs]
    if not signing and debug:
        # Development only: derived from the secret key, so checkpoints verify across restarts.
        seed = hashlib.sha256(b"foundry-audit-signing:" + secret.encode()).digest()
        key_id = "dev-" + hashlib.sha256(seed).hexdigest()[:8]
        signing = [SigningKey(key_id, Ed25519PrivateKey.from_private_bytes(seed))]
        if any(public_id == key_id for public_id, _ in public_pairs):
            raise ImproperlyConfigured(f"FOUNDRY_AUDIT_PUBLIC_KEYS: key id {key_id} is the development key's.")
    verifying = {key.key_id: key.private.public_key() for key in signing}
    for key_id, raw in public_pairs:
        verifying[key_id] = Ed25519PublicKey.from_public_bytes(raw)
    return signing, verifying


def _configured():
    return _keys(
        tuple(settings.FOUNDRY_AUDIT_SIGNING_KEYS),
        tuple(settings.FOUNDRY_AUDIT_PUBLIC_KEYS),
        settings.SECRET_KEY,
        settings.DEBUG,
    )


def signing_key() -> SigningKey:
    signing, _ = _configured()
    if not signing:
        raise ServiceError(
            "audit_signing_not_configured",
            "The platform has no audit signing key (FOUNDRY_AUDIT_SIGNING_KEYS).",
            status=503,
        )
    return signing[0]


def public_keys() -> dict[str, str]:
    """key id → public key (base64 of the 32 raw bytes), for verifiers."""
    _, verifying = _configured()
    return {
        key_id: base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")
        for key_id, key in verifying.items()
    }


def signature_valid(key_id: str, signature: str, message: bytes, keys: dict[str, str] | None = None) -> bool:
    """Whether `signature` (base64) is `key_id`'s over `message` (keys: id → base64 public key)."""
    encoded = (keys if keys is not None else public_keys()).get(key_id)
    if encoded is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded)).verify(base64.b64decode(signature), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def checkpoint_signed(
    checkpoint: dict, *, chain_ids: set[int], hash_id: int, keys: dict[str, str] | None = None
) -> bool:
    """Whether a listed key signed `checkpoint` (`checkpoint_key`)."""
    return checkpoint_key(checkpoint, chain_ids=chain_ids, hash_id=hash_id, keys=keys) is not None


def checkpoint_key(
    checkpoint: dict, *, chain_ids: set[int], hash_id: int, keys: dict[str, str] | None = None
) -> str | None:
    """The id of the listed key that signed `checkpoint` (`seq`, `hash`, `signed_at`, `key_id`,
    `signature`) for one of `chain_ids` hashed under `hash_id`, or None — as version 2 says it, or as
    version 1 did (checkpoints signed before it). An imported chain's are its own id and its
    origin's (`hash_id`): the origin signed its checkpoints under its own."""
    at = {
        "tenant_id": hash_id,
        "seq": checkpoint["seq"],
        "hash": checkpoint["hash"],
        "signed_at": checkpoint["signed_at"],
    }
    messages = [checkpoint_message(chain_id=chain, **at) for chain in sorted(chain_ids)]
    messages.append(checkpoint_message(chain_id=hash_id, **at, version="1"))
    keys = keys if keys is not None else public_keys()
    # The key it names first; then any other key trusted here, under whatever id: an imported
    # chain's checkpoints name their origin's key by the origin's id, which may be one of this
    # platform's own (two platforms' `dev1`). The id only says where to look first.
    named = checkpoint["key_id"]
    for key_id in (named, *(key_id for key_id in keys if key_id != named)):
        if any(signature_valid(key_id, checkpoint["signature"], message, keys) for message in messages):
            return key_id
    return None


def keys_untrusted(keys: dict) -> list[str]:
    """The key ids of `keys` (an archive's: id → the public keys that signed checkpoints naming
    it) that name a key this platform does not trust under any id, or none known: the
    checkpoints naming it do not all verify here until it does."""
    trusted = set(public_keys().values())
    return sorted(key_id for key_id, publics in keys.items() if not publics or not set(publics) <= trusted)
