"""AIP-158 pagination with opaque, keyset page tokens.

A token carries the sort key of the last row served, and is bound to the filter, the
ordering, the resource and the tenant schema it was issued for: reusing it with anything else
is refused, as is any token that was altered. Keyset (not offset) paging keeps every page as
cheap as the first and never skips or repeats rows when others are inserted meanwhile.

Tokens are encrypted and authenticated (Fernet, with a key derived from FOUNDRY_SECRET_KEY; the
fallback keys still open tokens they sealed): the key values in them are the caller's own rows',
but not all of them are the caller's to read — a primary key numbered across every workspace
(audit events, in one public table) would tell how many rows the others wrote in between.
"""

import base64
import binascii
import functools
import hashlib
import json
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.crypto import salted_hmac

from foundry.filtering.errors import FilterError
from foundry.filtering.ordering import Ordering, nullable

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
TOKEN_MAX_AGE = timedelta(days=1)
_SALT = "foundry.filtering.page-token.v2"


@dataclass(frozen=True)
class Page:
    items: list
    next_page_token: str


def page_size_parse(raw: str | int | None) -> int:
    """AIP-158: default 50; above the maximum is coerced to it; negative or garbage is refused."""
    if raw is None:
        return DEFAULT_PAGE_SIZE
    text = str(raw)
    if not text.isascii() or not text.isdigit():
        raise FilterError("invalid_page_size", "page_size must be a whole number, 0 or more.", None)
    digits = text.lstrip("0")
    if len(digits) > 12:  # above the maximum however long: lowered to it, not converted
        return MAX_PAGE_SIZE
    size = int(digits or "0")
    return min(size, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE


def _encode(value):
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    if isinstance(value, timedelta):
        return {"td": value.total_seconds()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    return value


def _decode(value):
    if isinstance(value, dict):
        if "dt" in value:
            return datetime.fromisoformat(value["dt"])
        if "dec" in value:
            return Decimal(value["dec"])
        if "td" in value:
            return timedelta(seconds=value["td"])
        if "uuid" in value:
            return uuid.UUID(value["uuid"])
    return value


def _fingerprint(*parts: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256("\x1f".join(parts).encode()).digest()[:12]).decode()


def _bound_to(resource: str, filter_text: str, ordering: Ordering) -> str:
    return _fingerprint(connection.schema_name, resource, filter_text.strip(), ordering.canonical())


def _fernet() -> MultiFernet:
    return _fernet_of((settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())))


@functools.lru_cache(maxsize=4)
def _fernet_of(secrets: tuple[str, ...]) -> MultiFernet:
    """The tokens' keys, derived once per set of secret keys (every list request seals or opens one)."""
    keys = [salted_hmac(_SALT, "fernet", secret=secret, algorithm="sha256").digest() for secret in secrets]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys])


def token_seal(payload: dict) -> str:
    """`payload` (JSON) as a page token: compressed, encrypted and authenticated, dated now."""
    return _fernet().encrypt(zlib.compress(json.dumps(payload, separators=(",", ":")).encode())).decode("ascii")


def token_open(token: str) -> object:
    """What `token_seal` sealed; FilterError when the token is not one of ours, or too old."""
    fernet = _fernet()
    try:
        sealed = token.encode("ascii")
        # Only the token as sealed: Fernet's base64 reads past what it does not decode (the token
        # twice over, padding added, a NUL after it), and an altered token is refused
        # (docs/api/filtering.md), not read as the one it was made from.
        if not sealed or base64.urlsafe_b64encode(base64.urlsafe_b64decode(sealed)) != sealed:
            raise InvalidToken
        data = fernet.decrypt(sealed)
        issued = fernet.extract_timestamp(sealed)
    except (InvalidToken, UnicodeEncodeError, binascii.Error):
        raise FilterError("invalid_page_token", "The page token is not valid.") from None
    if time.time() - issued > TOKEN_MAX_AGE.total_seconds():
        raise FilterError("page_token_expired", "The page token has expired; start from the first page.")
    try:  # authentic, so ours: sealed by a version that wrote another shape at worst
        return json.loads(zlib.decompressobj().decompress(data, 1 << 20))
    except (zlib.error, ValueError):
        raise FilterError("invalid_page_token", "The page token is not valid.") from None


def _value(row, lookup: str):
    for attr in lookup.split("__"):
        row = getattr(row, attr) if row is not None else None
    return row


def _after(ordering: Ordering, key: list, model) -> Q:
    """Rows strictly after `key` in this ordering (NULLs last in both directions; a column that
    holds none is compared without them, so its index serves the condition)."""
    condition, equal_so_far = Q(pk__in=[]), Q()
    for field, value in zip(ordering.fields, key, strict=True):
        if value is None:
            strictly = Q(pk__in=[])
            equal = Q(**{f"{field.lookup}__isnull": True})
        else:
            beyond = "lt" if field.descending else "gt"
            strictly = Q(**{f"{field.lookup}__{beyond}": value})
            if nullable(model, field.lookup):
                strictly |= Q(**{f"{field.lookup}__isnull": True})
            equal = Q(**{field.lookup: value})
        condition |= equal_so_far & strictly
        equal_so_far &= equal
    return condition


def paginate(
    queryset: QuerySet,
    *,
    resource: str,
    ordering: Ordering,
    filter_text: str = "",
    page_size: int = DEFAULT_PAGE_SIZE,
    page_token: str | None = None,
) -> Page:
    """One page of `queryset` (already filtered) in `ordering`, and the token for the next."""
    bound = _bound_to(resource, filter_text, ordering)
    queryset = queryset.order_by(*ordering.expressions(queryset.model))
    if page_token:
        payload = token_open(page_token)
        if not isinstance(payload, dict) or payload.get("b") != bound or not isinstance(payload.get("k"), list):
            raise FilterError(
                "page_token_mismatch", "The page token belongs to another query (filter, order_by or resource)."
            )
        key = [_decode(v) for v in payload["k"]]
        if len(key) != len(ordering.fields):
            raise FilterError("invalid_page_token", "The page token is not valid.")
        queryset = queryset.filter(_after(ordering, key, queryset.model))
    rows = list(queryset[: page_size + 1])
    if len(rows) <= page_size:
        return Page(rows, "")
    rows = rows[:page_size]
    key = [_encode(_value(rows[-1], f.lookup)) for f in ordering.fields]
    token = token_seal({"b": bound, "k": key})
    return Page(rows, token)
