"""The events' policy asks whether the writer is the trail's owner through a function, not a
sub-select (measured by bench/audit.py: 4 processes on 4 chains went from ~0.71x to ~0.75x of
plain inserts, three runs of each in turn).

0016 put `pg_has_role((SELECT relowner FROM pg_class ...), 'MEMBER')` in the WITH CHECK of
`audit_auditevent_tenant`, behind `action <> 'audit.pruned'`. The OR skips it for every other
action, but the sub-select is an InitPlan, and PostgreSQL sets an InitPlan up — it opens pg_class
and its index for an index scan — every time the INSERT starts, whether or not it runs: ~15 µs of
every append's ~150 µs in the database. `audit_owner_writes()` asks the same question when it is
called, which is for `audit.pruned` only. It runs as its caller (SECURITY INVOKER: the question is
about the writer) with a fixed search_path, and is the owner's: the app role can neither replace
it nor call anything else in its place.
"""

from django.db import migrations

FUNCTION_SQL = """
CREATE FUNCTION public.audit_owner_writes() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN pg_catalog.pg_has_role((
        SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'public.audit_auditevent'::pg_catalog.regclass
    ), 'MEMBER');
END
$$;
"""
CURRENT_TENANT = "NULLIF(current_setting('foundry.tenant_id', true), '')::bigint"
POLICY_SQL = f"""
ALTER POLICY audit_auditevent_tenant ON public.audit_auditevent WITH CHECK (
    tenant_id = {CURRENT_TENANT} AND (action <> 'audit.pruned' OR public.audit_owner_writes())
);
"""
_OWNER = "(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'public.audit_auditevent'::pg_catalog.regclass)"
POLICY_REVERSE_SQL = f"""
ALTER POLICY audit_auditevent_tenant ON public.audit_auditevent WITH CHECK (
    tenant_id = {CURRENT_TENANT}
    AND (action <> 'audit.pruned' OR pg_catalog.pg_has_role({_OWNER}, 'MEMBER'))
);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0019_purge_not_platform")]

    operations = [
        migrations.RunSQL(FUNCTION_SQL, "DROP FUNCTION public.audit_owner_writes()"),
        migrations.RunSQL(POLICY_SQL, POLICY_REVERSE_SQL),
    ]
