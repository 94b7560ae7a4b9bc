"""Identity providers' signing keys (JWKS), cached so that verifying a token costs no IdP call.

A key set is fetched once (SSRF-guarded, at most JWKS_TIMEOUT_SECONDS) and kept in the shared
cache for JWKS_TTL_SECONDS, and parsed once per process. Each copy names the configuration it was
fetched under (its `updated_at`): one fetched under an earlier configuration is never used, so
saving the SSO settings again drops the set even when the cache could not be reached to delete it
(it used to live on for its hour, withdrawn keys and all). A token signed with a key id the cached
set does not hold makes one refetch — at most one per JWKS_REFETCH_SECONDS per tenant and key set
(a `cache.add` guard shared by every process) — so an IdP's key rotation works without restart,
while a flood of tokens with made-up key ids cannot turn into a flood of IdP calls.
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import jwt
from django.core.cache import cache
from django.db import connection

from foundry.cache_values import cache_or, sealed_get, sealed_set
from foundry.errors import CodedError
from foundry.manifests.validation import url_host
from foundry.runtime.network import FetchError, NetworkPolicy, fetch

log = logging.getLogger(__name__)

JWKS_TIMEOUT_SECONDS = 5.0
JWKS_TTL_SECONDS = 3600
JWKS_REFETCH_SECONDS = 60
JWKS_DOWN_SECONDS = 10
JWKS_LOCAL_SECONDS = 30  # a process re-reads the shared cache at most this often
# How long a request waits for a set another request is fetching, before it is refused as
# unreachable for now: one fetch per set at a time, whatever the number of tokens that need it.
JWKS_WAIT_SECONDS = 0.5
MAX_KEYS = 100


class JwksUnavailable(CodedError):
    """The key set could not be fetched or read; `code` is stable."""


@dataclass(frozen=True)
class KeySet:
    fingerprint: str
    keys: dict[str, list[dict]]  # kid → its JWKs (public members only): keys of different types may share one


# cache key → (read at, the set this process read, the configuration it was fetched under)
_parsed: dict[str, tuple[float, KeySet, float]] = {}


def _cache_key(jwks_uri: str) -> str:
    """The set's key, the tenant's in it: the shared cache adds the tenant's prefix to what it
    keeps, and this process's copies are kept under the same key — a set one tenant's policy let
    it fetch is never another's without that one's policy (two tenants naming the same URL)."""
    return f"identity:jwks:{connection.schema_name}:" + hashlib.sha256(jwks_uri.encode()).hexdigest()[:32]


def _parse(text: str) -> KeySet:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested past Python's stack
        raise JwksUnavailable("jwks_invalid", "The key set is not JSON.") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksUnavailable("jwks_invalid", "The key set has no keys list.")
    by_kid: dict[str, list[dict]] = {}
    for key in keys[:MAX_KEYS]:
        if not isinstance(key, dict) or key.get("use", "sig") != "sig":
            continue
        if any(private in key for private in ("d", "p", "q", "k")):
            continue  # a private or symmetric key has no business in a published key set
        kid = key.get("kid")
        by_kid.setdefault(kid if isinstance(kid, str) else "", []).append(key)  # RFC 7517 4.5
    return KeySet(hashlib.sha256(text.encode()).hexdigest(), by_kid)


def _fetch(jwks_uri: str, policy: Callable[[], NetworkPolicy]) -> str:
    host = url_host(jwks_uri)
    try:
        result = fetch("GET", jwks_uri, hosts=[host], timeout=JWKS_TIMEOUT_SECONDS, policy=policy())
    except FetchError as exc:
        raise JwksUnavailable("jwks_unreachable", f"{jwks_uri}: {exc.message}") from None
    if result.status != 200:
        raise JwksUnavailable("jwks_unreachable", f"{jwks_uri} answered HTTP {result.status}.")
    try:
        return result.body.decode("utf-8")
    except UnicodeError:
        raise JwksUnavailable("jwks_invalid", "The key set is not UTF-8.") from None


def _store(key: str, text: str, configured: float) -> KeySet:
    keyset = _parse(text)
    # Sealed: another workspace's set, moved under this key, is none.
    sealed_set(key, {"configured": configured, "text": text}, JWKS_TTL_SECONDS)
    _parsed[key] = (time.monotonic(), keyset, configured)
    return keyset


def _cached(key: str, configured: float, *, fresh: bool = False) -> KeySet | None:
    """The set in the shared cache, unless fetched under a configuration older than `configured`;
    this process's copy when read less than JWKS_LOCAL_SECONDS ago (unless `fresh`: then always
    the shared cache, which another process may have refetched)."""
    known = _parsed.get(key)
    if known is not None and not fresh and time.monotonic() - known[0] < JWKS_LOCAL_SECONDS and known[2] >= configured:
        return known[1]
    stored = sealed_get(key)
    if not isinstance(stored, dict) or not isinstance(text := stored.get("text"), str):
        return None
    under = stored.get("configured")
    if isinstance(under, bool) or not isinstance(under, int | float) or under < configured:
        return None  # fetched before the settings were last saved: fetched again
    if known is not None and known[1].fingerprint == hashlib.sha256(text.encode()).hexdigest():
        keyset = known[1]
    else:
        keyset = _parse(text)
    _parsed[key] = (time.monotonic(), keyset, under)
    return keyset


_refetched: dict[str, float] = {}  # this process's last refetch per key, while the cache is away


def _refetch_allowed(key: str) -> bool:
    """At most one refetch per JWKS_REFETCH_SECONDS per tenant and key set, across processes (per
    process while the shared cache cannot be reached)."""
    marker = f"{key}:refetch:{connection.schema_name}"
    allowed = cache_or(lambda: cache.add(marker, time.time(), JWKS_REFETCH_SECONDS), None)
    if allowed is None:
        last = _refetched.get(marker)
        allowed = last is None or time.monotonic() - last >= JWKS_REFETCH_SECONDS
        if allowed:
            _refetched[marker] = time.monotonic()
    return allowed


def _pick(keyset: KeySet | None, kid: str) -> list[dict] | None:
    """The set's keys `kid` (keys of different types may share a kid: RFC 7517 4.5; the verifier
    takes the one that fits the token's algorithm); for a token naming none (""), the set's only
    key: OIDC Core 10.1 asks a provider for a `kid` only when its set holds several."""
    if keyset is None:
        return None
    if kid in keyset.keys:
        return keyset.keys[kid]
    if kid == "" and len(keyset.keys) == 1 and len(only := next(iter(keyset.keys.values()))) == 1:
        return only
    return None


def _fetch_lease(key: str) -> bool:
    """Whether this request fetches the set: one fetch of a set at a time across processes, each
    for at most the fetch's own timeout. Each that needed it waited the IdP's whole timeout, so a
    slow IdP of one workspace held every web thread (while the shared cache is away: each fetches)."""
    taken = cache_or(lambda: cache.add(f"{key}:fetching", 1, JWKS_TIMEOUT_SECONDS + 1), None)
    return taken is not False


def _fetched_meanwhile(key: str, configured: float, jwks_uri: str) -> KeySet:
    """The set another request is fetching, once it is stored; JwksUnavailable if it is not
    within JWKS_WAIT_SECONDS, or the fetch failed."""
    deadline = time.monotonic() + JWKS_WAIT_SECONDS
    while True:
        time.sleep(0.05)
        if (keyset := _cached(key, configured, fresh=True)) is not None:
            return keyset
        if cache_or(lambda: cache.get(f"{key}:down"), None) or time.monotonic() >= deadline:
            raise JwksUnavailable("jwks_unreachable", f"{jwks_uri} is slow to answer; retrying shortly.")


def jwks_key(
    jwks_uri: str, kid: str, policy: Callable[[], NetworkPolicy], *, configured: datetime
) -> list[dict] | None:
    """The public JWKs `kid` of the set at `jwks_uri` (`_pick`), or None when the set (even refetched,
    if a refetch is allowed now) does not hold it. JwksUnavailable when no set can be had at all.
    `configured`: when the SSO settings were last saved (a set fetched before is not used).
    `policy` is called only when the set must be fetched."""
    key, configured = _cache_key(jwks_uri), configured.timestamp()
    if (found := _pick(_cached(key, configured), kid)) is not None:
        return found
    keyset = _cached(key, configured, fresh=True)  # another process may have refetched it already
    if (found := _pick(keyset, kid)) is not None:
        return found
    if keyset is None:
        if cache_or(lambda: cache.get(f"{key}:down"), None):
            raise JwksUnavailable("jwks_unreachable", f"{jwks_uri} failed a moment ago; retrying shortly.")
        if not _fetch_lease(key):
            # Another request is fetching it (an IdP that answers slowly, or a burst of tokens
            # once the set expired): waited for briefly, never fetched a second time at once.
            return _pick(_fetched_meanwhile(key, configured, jwks_uri), kid)
        try:
            keyset = _store(key, _fetch(jwks_uri, policy), configured)
        except JwksUnavailable:
            # An IdP that is down must not cost every request a timeout: fail fast for a while.
            cache_or(lambda: cache.set(f"{key}:down", 1, JWKS_DOWN_SECONDS), None)
            raise
        finally:
            cache_or(lambda: cache.delete(f"{key}:fetching"), None)
    elif _refetch_allowed(key):
        log.info("jwks refetch for unknown kid", extra={"jwks_uri": jwks_uri, "kid": kid[:100]})
        keyset = _store(key, _fetch(jwks_uri, policy), configured)
    return _pick(keyset, kid)


def jwks_forget(jwks_uri: str) -> None:
    """Drop the cached set (the configuration changed: a copy that stays, the cache away, is not
    used since it names an earlier configuration)."""
    key = _cache_key(jwks_uri)
    cache_or(lambda: cache.delete(key), None)
    _parsed.pop(key, None)


def jwks_schema_forget(schema: str) -> None:
    """Drop this process's copies of a schema's key sets (its workspace was purged: a new one may
    take the schema's name). The shared cache's go with the schema's cache keys."""
    start = f"identity:jwks:{schema}:"
    for key in list(_parsed):  # a copy: another thread may add to it meanwhile
        if key.startswith(start):
            _parsed.pop(key, None)


_public: dict[tuple[str, str], jwt.PyJWK] = {}


def public_key(jwk: dict, algorithm: str) -> jwt.PyJWK:
    """The JWK as a verification key for `algorithm`, parsed once per process."""
    ident = (json.dumps(jwk, sort_keys=True), algorithm)
    found = _public.get(ident)
    if found is None:
        if len(_public) > 1000:
            _public.clear()
        found = _public[ident] = jwt.PyJWK(jwk, algorithm=algorithm)
    return found
