"""Host → tenant routing, cached so a request normally costs no database round trip.

Two layers: a per-process dict trusted for FOUNDRY_TENANT_ROUTE_TTL seconds, behind a Redis
entry shared by every process. Changes to a tenant's status or domains delete the Redis entry
and this process's copy when their transaction commits; other processes notice within the TTL.
A Redis outage degrades to one indexed query per request, never to a wrong answer.
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

_REDIS_TTL_SECONDS = 300
_MISSING = "-"  # cached answer for "no such host"


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


def _redis_get(host: str) -> TenantRoute | str | None:
    """The shared cached route, None for a cached miss, or _MISSING when Redis has nothing."""
    try:
        raw = get_redis_connection("default").hgetall(_redis_key(host))
    except RedisError:
        logger.warning("tenant route cache unavailable", exc_info=True)
        return _MISSING
    if not raw:
        return _MISSING
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    if fields.get("missing"):
        return None
    return TenantRoute(
        tenant_id=int(fields["tenant_id"]),
        schema_name=fields["schema_name"],
        slug=fields["slug"],
        name=fields["name"],
        plan=fields["plan"],
        status=fields["status"],
    )


def _redis_set(host: str, route: TenantRoute | None) -> None:
    key = _redis_key(host)
    mapping = {k: str(v) for k, v in asdict(route).items()} if route else {"missing": "1"}
    try:
        pipe = get_redis_connection("default").pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, _REDIS_TTL_SECONDS if route else 5)
        pipe.execute()
    except RedisError:
        logger.warning("tenant route cache unavailable", exc_info=True)


def route_for_host(host: str) -> TenantRoute | None:
    now = time.monotonic()
    cached = _local.get(host)
    if cached is not None and cached[0] > now:
        return cached[1]
    route = _redis_get(host)
    if route == _MISSING:
        route = _query(host)
        _redis_set(host, route)
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
    try:
        get_redis_connection("default").delete(*(_redis_key(h) for h in hosts))
    except RedisError:
        logger.warning("tenant route cache unavailable; entries expire by TTL", exc_info=True)


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
