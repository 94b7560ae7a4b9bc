"""Host → tenant routing, cached so a request normally costs no database round trip.

Two layers: a per-process dict trusted for FOUNDRY_TENANT_ROUTE_TTL seconds, behind a Redis
entry shared by every process. Changes to a tenant's status or domains delete the Redis entry
and this process's copy when their transaction commits; other processes notice within the TTL.
A Redis outage degrades to one indexed query per request, never to a wrong answer.

That deletion happens after the commit, so it can be lost: Redis unreachable at that moment
(it is tried three times), or the process killed between its commit and its callbacks. The
shared entry therefore lives only SHARED_TTL_SECONDS: a suspension whose invalidation was lost
still reaches every process within that plus the TTL, at the price of one indexed query per
host every SHARED_TTL_SECONDS for the whole deployment.

A route read from the database just before a change commits must not be cached after the
change deleted the entry (every process would serve the old status for the entry's lifetime):
each host has a generation in Redis that invalidation bumps; a route read under one generation
is written only if the generation is still the same (one script, atomic).
"""

import logging
import threading
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

SHARED_TTL_SECONDS = 10
INVALIDATE_ATTEMPTS = 3
_GENERATION_TTL_SECONDS = 86_400  # far longer than any read-then-write; a lost one only refuses a write
_MISSING = "-"  # cached answer for "no such host"
# KEYS: the entry, the host's generation; ARGV: the generation read before the query, the TTL,
# then the entry's fields and values. Written only if no invalidation came in between.
_SET_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class TenantRoute:
    tenant_id: int
    schema_name: str
    slug: str
    name: str
    plan: str
    status: str

    @property
    def is_active(self) -> bool:
        return self.status == "active"


def _redis_key(host: str) -> str:
    # The database name keeps deployments (or test databases) sharing one Redis apart.
    return f"foundry:{connection.settings_dict['NAME']}:tenant-route:v1:{host}"


def _generation_key(host: str) -> str:
    return f"foundry:{connection.settings_dict['NAME']}:tenant-route:gen:{host}"


def route_keys(host: str) -> tuple[str, str]:
    """The Redis keys of one host's cached route (a workspace's purge deletes them)."""
    return _redis_key(host), _generation_key(host)


_local: dict[str, tuple[float, TenantRoute | None]] = {}
_local_lock = threading.Lock()


def _query(host: str) -> TenantRoute | None:
    # Schema-qualified, so it works whatever search_path the connection has right now.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, t.schema_name, t.slug, t.name, t.plan, t.status"
            " FROM public.tenants_domain d JOIN public.tenants_tenant t ON t.id = d.tenant_id"
            " WHERE d.domain = %s",
            [host],
        )
        row = cursor.fetchone()
    return TenantRoute(*row) if row else None


def _redis_get(host: str) -> tuple[TenantRoute | str | None, str | None]:
    """(The shared cached route, None for a cached miss, or _MISSING when Redis has nothing; the
    host's generation, None when Redis could not be asked), in one round trip."""
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.hgetall(_redis_key(host))
        pipe.get(_generation_key(host))
        raw, generation = pipe.execute()
    except RedisError:
        logger.warning("tenant route cache unavailable", exc_info=True)
        return _MISSING, None
    generation = generation.decode() if generation else "0"
    if not raw:
        return _MISSING, generation
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    if fields.get("missing"):
        return None, generation
    return TenantRoute(
        tenant_id=int(fields["tenant_id"]),
        schema_name=fields["schema_name"],
        slug=fields["slug"],
        name=fields["name"],
        plan=fields["plan"],
        status=fields["status"],
    ), generation


def _redis_set(host: str, route: TenantRoute | None, generation: str) -> None:
    """Cache `route`, read from the database under `generation`, unless it changed since."""
    mapping = {k: str(v) for k, v in asdict(route).items()} if route else {"missing": "1"}
    pairs = [item for field in mapping.items() for item in field]
    ttl = SHARED_TTL_SECONDS if route else 5
    try:
        get_redis_connection("default").eval(
            _SET_IF_CURRENT, 2, _redis_key(host), _generation_key(host), generation, ttl, *pairs
        )
    except RedisError:
        logger.warning("tenant route cache unavailable", exc_info=True)


def route_for_host(host: str) -> TenantRoute | None:
    now = time.monotonic()
    cached = _local.get(host)
    if cached is not None and cached[0] > now:
        return cached[1]
    route, generation = _redis_get(host)
    if route == _MISSING:
        route = _query(host)
        if generation is not None:
            _redis_set(host, route, generation)
    with _local_lock:
        if len(_local) > 10_000:  # bound memory against floods of made-up hosts
            _local.clear()
        _local[host] = (now + settings.FOUNDRY_TENANT_ROUTE_TTL, route)
    return route


def route_invalidate(*hosts: str) -> None:
    """Forget the routes of these hosts, here and in Redis."""
    with _local_lock:
        for host in hosts:
            _local.pop(host, None)
    if not hosts:
        return
    for attempt in range(INVALIDATE_ATTEMPTS):
        try:
            pipe = get_redis_connection("default").pipeline()
            pipe.delete(*(_redis_key(h) for h in hosts))
            for host in hosts:  # a route read before this point is no longer written (_SET_IF_CURRENT)
                pipe.incr(_generation_key(host))
                pipe.expire(_generation_key(host), _GENERATION_TTL_SECONDS)
            pipe.execute()
            return
        except RedisError:
            if attempt + 1 < INVALIDATE_ATTEMPTS:
                time.sleep(0.1 * 3**attempt)
    logger.error(
        "tenant route cache unavailable; other processes see the change within %s s", SHARED_TTL_SECONDS, exc_info=True
    )


def route_cache_clear_local() -> None:
    with _local_lock:
        _local.clear()


def route_cache_clear() -> None:
    """Forget every cached route of this database (tests; after restoring a backup)."""
    route_cache_clear_local()
    try:
        client = get_redis_connection("default")
        keys = list(client.scan_iter(match=_redis_key("*"), count=500))
        if keys:
            client.delete(*keys)
    except RedisError:
        logger.warning("tenant route cache unavailable", exc_info=True)
