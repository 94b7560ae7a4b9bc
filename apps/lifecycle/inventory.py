"""Where a workspace's data lives — the one place export, import and purge ask.

Read from the database's catalog, not listed by hand, so a table added later is covered at once:
- its schema: every table in it (the workspace's rows, LangGraph's checkpoint tables included);
- the public schema: every table with a `tenant_id` column (audit chain, usage ledger, budgets,
  domains, …), plus the tenant's own row in `tenants_tenant`;
- outside the database: its files in the default storage under `<kind>/<schema>/`, and its
  Redis keys (`redis_patterns`).
"""

import re
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection

from apps.tenants.routing import route_keys
from foundry.redis_clients import redis_client

# Bookkeeping of the schema itself, not the workspace's data: recreated by the schema's creation.
SCHEMA_BOOKKEEPING = frozenset({"django_migrations", "checkpoint_migrations", "django_content_type", "auth_permission"})
# Files kept per workspace in the default storage, under `<kind>/<schema name>/`.
STORAGE_KINDS = ("exports",)


@dataclass(frozen=True)
class Table:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'


def schema_tables(schema: str, *, bookkeeping: bool = False) -> list[Table]:
    """The base tables of `schema`, parents before children (by foreign key), so rows can be
    inserted in this order and deleted in the reverse one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            [schema],
        )
        names = [name for (name,) in cursor.fetchall() if bookkeeping or name not in SCHEMA_BOOKKEEPING]
        cursor.execute(
            "SELECT child.relname, parent.relname FROM pg_constraint k"
            " JOIN pg_class child ON child.oid = k.conrelid JOIN pg_class parent ON parent.oid = k.confrelid"
            " JOIN pg_namespace n ON n.oid = child.relnamespace JOIN pg_namespace pn ON pn.oid = parent.relnamespace"
            " WHERE k.contype = 'f' AND n.nspname = %s AND pn.nspname = %s",
            [schema, schema],
        )
        parents: dict[str, set[str]] = {name: set() for name in names}
        for child, parent in cursor.fetchall():
            if child in parents and parent in parents and child != parent:
                parents[child].add(parent)
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = [name for name in names if name not in placed and parents[name] <= placed]
        if not ready:  # a cycle: keep the rest in name order (constraints are checked at commit)
            ready = [name for name in names if name not in placed]
        for name in ready:
            ordered.append(name)
            placed.add(name)
    return [Table(schema, name) for name in ordered]


def stored_columns(table: Table) -> list[str]:
    """The table's stored columns, in order (generated columns are neither stored nor written)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [table.qualified],
        )
        return [name for (name,) in cursor.fetchall()]


def public_tenant_tables() -> list[Table]:
    """Public tables whose rows belong to one tenant by a `tenant_id` column."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = 'tenant_id'"
            " AND NOT a.attisdropped ORDER BY c.relname"
        )
        return [Table("public", name) for (name,) in cursor.fetchall()]


@dataclass(frozen=True)
class KeyPattern:
    """Redis keys of one workspace: those a SCAN for `match` returns that `owned` matches whole.
    A glob's `*` also matches `:`, so `rl:*:7` alone would take other workspaces' keys ending in
    `:7` (a member whose user id is 7); the expression says where the workspace's id stands."""

    match: str
    owned: re.Pattern[bytes]

    def keys(self, client: redis.Redis) -> list[bytes]:
        return [key for key in client.scan_iter(match=self.match, count=1000) if self.owned.fullmatch(key)]


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _exact(key: str) -> KeyPattern:
    return KeyPattern(_glob_escape(key), re.compile(re.escape(key.encode())))


def redis_patterns(*, tenant_id: int, schema: str, hosts: list[str]) -> list[KeyPattern]:
    """The Redis keys kept for one workspace: its rate-limit buckets, run slots and sign-in limits
    (`rl:<scope>:<tenant id>[:…]`, foundry/ratelimit.py), its run locks and cancellation signals
    (runs/locks.py), marks of runs waiting for a slot (runs/admission.py), of refusals audited
    lately (audit) and of the days its usage was rolled up (billing), what the
    cache holds for its schema (django-tenants' key function starts each key with the schema and
    the cache's prefix: JWKS guards, cached pages…), its chain's cached status and the cached
    routes of its hosts. Nothing else: a workspace's slug may be any word (`tenant`, `runs`,
    `user`), so no pattern takes a key just because the schema's name appears in it."""
    ident, prefix = str(tenant_id), settings.CACHES["default"].get("KEY_PREFIX", "")
    cache = f"{schema}:{prefix}:"
    patterns = [
        KeyPattern(f"rl:*:{ident}*", re.compile(rb"rl:[a-z0-9_-]+:" + ident.encode() + rb"(?::.*)?", re.S)),
        *(
            KeyPattern(f"{start}*", re.compile(re.escape(start.encode()) + rb".+", re.S))
            # runs/locks, admission, audit/services (a refusal's repeat mark)
            for start in (
                f"foundry:run-lock:{schema}:",
                f"foundry:run-cancel:{schema}:",
                f"foundry:run-waiting:{schema}:",
                f"foundry:audit-repeat:{schema}:",
            )
        ),
        KeyPattern(_glob_escape(cache) + "*", re.compile(re.escape(cache.encode()) + rb".*", re.S)),
        KeyPattern(  # its chain's status, cached in any schema, and its claim (audit/verify.py chain_status)
            f"*:audit:chain-status:{ident}*",
            re.compile(
                rb"[a-z0-9_]+:"
                + re.escape(prefix.encode())
                + rb":[0-9]+:audit:chain-status:"
                + ident.encode()
                + rb"(?::claim)?"
            ),
        ),
    ]
    patterns.append(_exact(f"foundry:retention:{schema}"))  # a pass's lock (lifecycle/retention.py)
    patterns.append(  # the days its usage was rolled up (billing/rollups.py)
        KeyPattern(
            f"foundry:billing:rolled:{ident}:*",
            re.compile(rb"foundry:billing:rolled:" + ident.encode() + rb":\d{4}-\d{2}-\d{2}"),
        )
    )
    return patterns + [_exact(key) for host in hosts for key in route_keys(host)]


def redis_clients() -> list[redis.Redis]:
    """A client of each Redis the platform keeps things in: the cache's, the rate limiter's and
    the broker's (one each, where they are the same server and database)."""
    clients = {settings.CACHES["default"]["LOCATION"]: get_redis_connection("default")}
    for url in (settings.FOUNDRY_RATELIMIT_REDIS_URL, settings.CELERY_BROKER_URL):
        if url and url.startswith(("redis://", "rediss://", "sentinel://")) and url not in clients:
            clients[url] = redis_client(url)
    return list(clients.values())
