"""The shared cache: keys carry the workspace they were written for, and values are JSON the
platform wrote (foundry/cache_values.py): whoever can write to its Redis runs no code in the
processes reading it, and cannot make them take a value of their own, or another key's."""

import os
import pickle

from django.core.cache import cache
from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from apps.audit.views import chain_status
from foundry.cache_values import sealed_get, sealed_set


def test_cache_keys_are_tenant_prefixed(acme, globex):
    with schema_context("acme"):
        cache.set("greeting", "hello from acme")
    with schema_context("globex"):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello from globex")
    with schema_context("acme"):
        assert cache.get("greeting") == "hello from acme"


class _Payload:
    """What someone able to write into Redis stores under a key a web process reads."""

    def __reduce__(self):
        return (exec, ("import os; os.environ['FOUNDRY_TEST_CACHE_RAN'] = 'ran'",))


def test_a_pickle_written_into_the_cache_runs_no_code_and_is_no_value(db):
    """django-redis unpickled what it read (its default serializer): a pickle written under the
    audit page's key ran in the web process, beside the secret and encryption keys."""
    chain = 987_654_321
    key = cache.make_key(f"audit:chain-status:{chain}")
    raw = get_redis_connection("default")
    raw.set(key, pickle.dumps(_Payload()))
    os.environ.pop("FOUNDRY_TEST_CACHE_RAN", None)
    try:
        assert chain_status(chain, compute=False) is None
    finally:
        raw.delete(key)
    assert os.environ.pop("FOUNDRY_TEST_CACHE_RAN", None) is None, "a pickled cache value ran code"


def test_json_the_platform_did_not_write_is_no_value(db):
    cache.set("written", {"by": "us"})
    assert cache.get("written") == {"by": "us"}
    raw = get_redis_connection("default")
    raw.set(cache.make_key("forged"), b'{"by": "someone else"}')
    assert cache.get("forged") is None


def test_a_sealed_value_moved_under_another_key_is_none(acme, globex):
    """A workspace's identity provider's key set, copied under another workspace's key, would let
    that provider sign tokens the other workspace takes: a sealed value names its key."""
    raw = get_redis_connection("default")
    with schema_context("acme"):
        sealed_set("identity:jwks:x", '{"keys": []}', 60)
        stored = raw.get(cache.make_key("identity:jwks:x"))
        assert sealed_get("identity:jwks:x") == '{"keys": []}'
    with schema_context("globex"):
        raw.set(cache.make_key("identity:jwks:x"), stored)
        assert sealed_get("identity:jwks:x") is None


def test_a_cached_chain_status_reads_back_as_it_was_computed(db):
    """The status holds its time as a datetime, cached as JSON text and read back as one."""
    computed = chain_status(0)
    cached = chain_status(0, compute=False)
    assert cached == computed and cached["checked_at"].tzinfo is not None
