"""A purged workspace's chain takes no more events. An append that waited for the owner's purge
(on the chain's advisory lock, 0012) found the head gone once the purge committed and rebuilt it
from nothing: its event was left behind, the first of a new chain of a workspace that no longer
exists, in an append-only table. Now, when `audit_append` has to rebuild a head (a new chain, a
head lost with the unlogged table, or this), it first reads the platform chain's last word on the
workspace — `tenant.purged` or `lifecycle.backup.restored`, as the purge gate (0009) reads it —
and refuses to write after a purge that no restore has undone (ERRCODE 55000). Appends to a
chain whose head is there pay nothing for it."""

from importlib import import_module

from django.db import migrations

_PREVIOUS = import_module("apps.audit.migrations.0016_pruned_guard_in_policy").APPEND_SQL
_REBUILD = "        -- A new chain, or a head lost with the unlogged table: rebuilt from the last event and the base.\n"
_CLOSED = """        -- A new chain, or a head lost with the unlogged table: rebuilt from the last event and the base,
        -- unless the platform chain says the workspace was purged since it was last restored (0017).
        IF p_tenant <> 0 THEN
            PERFORM pg_catalog.set_config('foundry.tenant_id', '0', true);
            SELECT e.action INTO fate FROM public.audit_auditevent e
             WHERE e.tenant_id = 0 AND e.target_id = p_tenant::text AND e.outcome = 'success'
               AND ((e.action = 'tenant.purged' AND e.target_type = 'tenants.tenant')
                    OR (e.action = 'lifecycle.backup.restored' AND e.target_type = 'tenant'))
             ORDER BY e.seq DESC LIMIT 1;
            PERFORM pg_catalog.set_config('foundry.tenant_id', p_tenant::text, true);
            IF fate = 'tenant.purged' THEN
                RAISE EXCEPTION 'workspace % was purged: its audit chain takes no more events', p_tenant
                    USING ERRCODE = '55000';
            END IF;
        END IF;
"""
APPEND_SQL = _PREVIOUS.replace(_REBUILD, _CLOSED, 1).replace(
    "    at timestamptz;\n", "    at timestamptz;\n    fate text;\n", 1
)
assert APPEND_SQL.count("fate") == 3


class Migration(migrations.Migration):
    dependencies = [("audit", "0016_pruned_guard_in_policy")]

    operations = [migrations.RunSQL(APPEND_SQL, _PREVIOUS)]
