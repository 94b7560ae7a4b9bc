"""Where a workspace's data lives — the one place export, import and purge ask.

Read from the database's catalog, not listed by hand, so a table added later is covered at once:
- its schema: every table in it (the workspace's rows, LangGraph's checkpoint tables included);
- the public schema: every table with a `tenant_id` column (audit chain, usage ledger, budgets,
  domains, …), plus the tenant's own row in `tenants_tenant`;
- outside the database: its files in the default storage under `<kind>/<schema>/`, and its
  Redis keys (`redis_patterns`).
"""

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection

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


def redis_patterns(*, tenant_id: int, schema: str, hosts: list[str]) -> list[str]:
    """Redis key patterns (SCAN MATCH) of everything kept for one workspace: its rate-limit
    buckets, run slots and sign-in limits (`rl:<scope>:<id>[:…]`), run locks and other keys that
    name its schema, its cached chain status and the cached routes of its hosts."""
    patterns = [
        f"rl:*:{tenant_id}",
        f"rl:*:{tenant_id}:*",
        f"*:{schema}:*",
        f"*:{schema}",
        f"*audit:chain-status:{tenant_id}",
    ]
    return patterns + [f"*tenant-route:*:{host}" for host in hosts]


def redis_clients() -> list[redis.Redis]:
    """A client of each Redis the platform keeps things in: the cache's, the rate limiter's and
    the broker's (one each, where they are the same server and database)."""
    clients = {settings.CACHES["default"]["LOCATION"]: get_redis_connection("default")}
    for url in (settings.FOUNDRY_RATELIMIT_REDIS_URL, settings.CELERY_BROKER_URL):
        if url and url.startswith(("redis://", "rediss://")) and url not in clients:
            clients[url] = redis.Redis.from_url(url)
    return list(clients.values())
