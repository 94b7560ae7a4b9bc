"""What the shared cache (FOUNDRY_CACHE_URL's Redis) holds: JSON the platform wrote, read back as
data only.

django-redis pickles values by default, and unpickling runs whatever a value names: whoever can
write to that Redis (which the deployment guide counts as an adversary, as for Celery messages)
would run code in every web process, beside the secret and encryption keys. Values are JSON here
(Django's encoder: datetimes, decimals and UUIDs as text; so no whole responses, no cache_page),
each behind an HMAC under a key derived from FOUNDRY_SECRET_KEY: a value the platform did not
write (or wrote under another secret key, or a pickle left by an older release) is no value, a
cache miss. A value is not bound to its key here: one whose key matters (a workspace's identity
provider's key set, which another workspace's must never stand in for) names its key inside it
(`sealed_get`, `sealed_set`).

The cache only saves work: when its Redis cannot be reached, `cache_or` answers the default (a
miss, a write skipped), logged, and the caller does the work again (docs/operations/scaling.md).
"""

import hashlib
import hmac
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django_redis.serializers.json import JSONSerializer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
T = TypeVar("T")
_MAC_BYTES = 32


@lru_cache(maxsize=4)
def _mac_key(secret: str) -> bytes:
    return hashlib.sha256(b"foundry-cache-values:" + secret.encode()).digest()


def _mac(data: bytes) -> bytes:
    return hmac.new(_mac_key(settings.SECRET_KEY), data, hashlib.sha256).digest()


class JsonValues(JSONSerializer):
    def dumps(self, value) -> bytes:
        data = super().dumps(value)
        return _mac(data) + data

    def loads(self, value: bytes):
        mac, data = value[:_MAC_BYTES], value[_MAC_BYTES:]
        if not hmac.compare_digest(mac, _mac(data)):
            return None
        try:
            return super().loads(data)
        except (ValueError, RecursionError):  # not UTF-8 or not JSON: written by nobody we know
            return None


def cache_or(operation: Callable[[], T], default: T) -> T:
    """`operation` on the shared cache, or `default` when its Redis cannot be reached (logged)."""
    try:
        return operation()
    except RedisError as exc:
        logger.warning("the shared cache could not be reached (%s); going on without it", type(exc).__name__)
        return default


def sealed_set(key: str, value, timeout: float) -> None:
    """Cache `value` under `key`, naming the key inside it (as stored: with the workspace's prefix):
    moved under another key, another workspace's included, it is none."""
    cache_or(lambda: cache.set(key, {"key": cache.make_key(key), "value": value}, timeout), None)


def sealed_get(key: str):
    """The value `sealed_set` cached under `key`; None when there is none, or it was cached under
    another, or the cache cannot be reached."""
    stored = cache_or(lambda: cache.get(key), None)
    if isinstance(stored, dict) and stored.get("key") == cache.make_key(key):
        return stored.get("value")
    return None
