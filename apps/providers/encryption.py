"""Secrets at rest: Fernet under the platform's FOUNDRY_ENCRYPTION_KEYS, through MultiFernet —
the first key encrypts, every key decrypts, and `secret_rotate` re-encrypts under the first.
Keys are read from settings on use (never at import), so a changed setting takes effect at once.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from foundry.errors import ServiceError


class EncryptionUnavailable(ServiceError):
    status = 503

    def __init__(self):
        super().__init__(
            "encryption_not_configured",
            "The platform has no encryption key (FOUNDRY_ENCRYPTION_KEYS), so it cannot store secrets.",
        )


class SecretUndecryptable(ServiceError):
    status = 503  # the platform's keys, not the request, are at fault

    def __init__(self):
        super().__init__(
            "secret_undecryptable",
            "A stored secret cannot be decrypted with any configured key; was a key removed before rotating?",
        )


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _current() -> tuple[MultiFernet, Fernet]:
    keys = tuple(getattr(settings, "FOUNDRY_ENCRYPTION_KEYS", ()) or ())
    if not keys:
        raise EncryptionUnavailable()
    return _fernets(keys)


def encryption_available() -> bool:
    return bool(getattr(settings, "FOUNDRY_ENCRYPTION_KEYS", None))


def secret_encrypt(plaintext: str) -> str:
    return _current()[0].encrypt(plaintext.encode("utf-8")).decode("ascii")


def secret_decrypt(token: str) -> str:
    try:
        return _current()[0].decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretUndecryptable() from None


def secret_rotate(token: str) -> str:
    """The same secret encrypted under the first key (SecretUndecryptable if no key opens it)."""
    try:
        return _current()[0].rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise SecretUndecryptable() from None


def secret_is_current(token: str) -> bool:
    """Whether `token` is encrypted under the first key (rotation has reached it)."""
    try:
        _current()[1].decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True
