"""Secrets at rest: Fernet under the platform's FOUNDRY_ENCRYPTION_KEYS, through MultiFernet —
the first key encrypts, every key decrypts, and `secret_rotate` re-encrypts under the first.
Keys are read from settings on use (never at import), so a changed setting takes effect at once.

Each secret is sealed with its place (`schema/table/row`, `*_place` beside each model's
services): a ciphertext copied into another row — another workspace's, whose provider URL is its
own — opens nowhere but where it was sealed (SecretUndecryptable). Fernet has no associated data,
so the place is inside the sealed text, behind a version mark. A secret sealed before places were
(no mark) still opens anywhere, and `rotate_encryption_keys` seals it again with its place.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import connection

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


def secret_place(table: str, key: object, *, schema: str | None = None) -> str:
    """Where a secret is stored: its schema (default: the connection's), table and row."""
    return f"{schema or connection.schema_name}/{table}/{key}"


PLACED = b"foundry-secret:1\x00"  # a sealed text that names its place, then NUL, then the secret


def secret_encrypt(plaintext: str, *, place: str) -> str:
    """`plaintext` sealed under the first key, for `place` only."""
    sealed = PLACED + place.encode("utf-8") + b"\x00" + plaintext.encode("utf-8")
    return _current()[0].encrypt(sealed).decode("ascii")


def _opened(token: str, fernet: Fernet | MultiFernet, place: str | None) -> tuple[str, bool]:
    """(the secret, whether it names its place); SecretUndecryptable if no key opens it, or it
    was sealed for another place than `place` (None: any, to tell only whether it opens)."""
    try:
        data = fernet.decrypt(token.encode("ascii"))
        if not data.startswith(PLACED):
            return data.decode("utf-8"), False  # sealed before places were
        where, sep, secret = data[len(PLACED) :].partition(b"\x00")
        if not sep or (place is not None and where != place.encode("utf-8")):
            raise SecretUndecryptable()
        return secret.decode("utf-8"), True
    except (InvalidToken, UnicodeError):
        raise SecretUndecryptable() from None


def secret_decrypt(token: str, *, place: str | None) -> str:
    return _opened(token, _current()[0], place)[0]


def secret_rotate(token: str, *, place: str) -> str:
    """The same secret sealed under the first key for `place` (SecretUndecryptable if no key
    opens it, or it is another place's)."""
    return secret_encrypt(secret_decrypt(token, place=place), place=place)


def secret_is_current(token: str, *, place: str) -> bool:
    """Whether `token` is sealed under the first key, naming `place` (rotation has reached it)."""
    try:
        return _opened(token, _current()[1], place)[1]
    except SecretUndecryptable:
        return False
