"""`audit.pruned` is written by the trail's owner only, whichever way a row arrives (found while
measuring appends): 0014 made `audit_append` refuse the action from other roles, but the app role
holds INSERT on the events table and could write a hash-consistent `audit.pruned` row with a plain
INSERT, excusing a hand-made cut all the same. The check is now part of the events' Row-Level
Security policy (its WITH CHECK, forced for every role), so it binds `audit_append`, the owner's
prune and a direct INSERT alike; `audit_append` loses its own check (an IF around a catalog lookup,
~15 µs of every append). The lookup of the table's owner runs only for that one action.
"""

from importlib import import_module

from django.db import migrations

CURRENT_TENANT = "NULLIF(current_setting('foundry.tenant_id', true), '')::bigint"
_OWNER = "(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'public.audit_auditevent'::pg_catalog.regclass)"
POLICY_SQL = f"""
ALTER POLICY audit_auditevent_tenant ON public.audit_auditevent WITH CHECK (
    tenant_id = {CURRENT_TENANT}
    AND (action <> 'audit.pruned' OR pg_catalog.pg_has_role({_OWNER}, 'MEMBER'))
);
"""
POLICY_REVERSE_SQL = f"ALTER POLICY audit_auditevent_tenant ON public.audit_auditevent WITH CHECK (tenant_id = {CURRENT_TENANT});"

_PREVIOUS = import_module("apps.audit.migrations.0014_append_guards")
APPEND_SQL = _PREVIOUS.APPEND_SQL.replace(_PREVIOUS._OWNER_ONLY, "BEGIN\n", 1)
assert "audit.pruned" not in APPEND_SQL


class Migration(migrations.Migration):
    dependencies = [("audit", "0015_purge_queue")]

    operations = [
        migrations.RunSQL(POLICY_SQL, POLICY_REVERSE_SQL),
        migrations.RunSQL(APPEND_SQL, _PREVIOUS.APPEND_SQL),
    ]
