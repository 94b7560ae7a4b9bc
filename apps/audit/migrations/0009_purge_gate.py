"""A workspace's audit chain is purged only once the platform's own trail says it may be.

`audit_chain_purge` checked the workspace's status, a column the app role writes: SQL injected
into the application could mark a live workspace for deletion, purge its chain and mark it live
again, and nothing need remain of it. Now the function also reads the platform chain (tenant 0),
which the app role can only append to: the last `tenant.deletion_scheduled`,
`tenant.deletion_cancelled` or `lifecycle.backup.restored` event of the workspace there (a
restore brings a workspace back, whatever an earlier scheduling said) must be a scheduling, with
its grace period (`purge_after` in its details) over. A forged purge now has to append a scheduling first,
which stays on the platform chain for good, hashed and signed like every other event — and waits
out the grace period it names.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION public.audit_chain_purge(p_tenant bigint) RETURNS TABLE (table_name text, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    previous_tenant text := current_setting('foundry.tenant_id', true);
    previous_erasing text := current_setting('foundry.erasing', true);
    last_action text;
    last_details text;
    purge_after timestamptz;
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM public.tenants_tenant t WHERE t.id = p_tenant AND t.status = 'deleting') THEN
        RAISE EXCEPTION 'the audit chain of workspace % is purged only with the workspace, once scheduled for deletion',
            p_tenant USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('foundry.tenant_id', '0', true);  -- the platform chain
    SELECT e.action, e.details INTO last_action, last_details
      FROM public.audit_auditevent e
     WHERE e.tenant_id = 0 AND e.target_id = p_tenant::text AND e.outcome = 'success'
       AND ((e.action IN ('tenant.deletion_scheduled', 'tenant.deletion_cancelled') AND e.target_type = 'tenants.tenant')
            OR (e.action = 'lifecycle.backup.restored' AND e.target_type = 'tenant'))
     ORDER BY e.seq DESC LIMIT 1;
    IF last_action = 'tenant.deletion_scheduled' THEN
        BEGIN
            purge_after := (last_details::jsonb ->> 'purge_after')::timestamptz;
        EXCEPTION WHEN OTHERS THEN
            purge_after := NULL;
        END;
    END IF;
    IF purge_after IS NULL OR purge_after > clock_timestamp() THEN
        RAISE EXCEPTION 'the audit chain of workspace % is purged only once the platform audit trail records its'
            ' deletion scheduled and the grace period over', p_tenant USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('foundry.tenant_id', p_tenant::text, true);
    PERFORM set_config('foundry.erasing', 'on', true);
    DELETE FROM public.audit_auditevent e WHERE e.tenant_id = p_tenant;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'audit_auditevent'; deleted := n; RETURN NEXT;
    DELETE FROM public.audit_auditcheckpoint c WHERE c.tenant_id = p_tenant;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'audit_auditcheckpoint'; deleted := n; RETURN NEXT;
    DELETE FROM public.audit_auditchain h WHERE h.tenant_id = p_tenant;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'audit_auditchain'; deleted := n; RETURN NEXT;
    DELETE FROM public.audit_auditchainbase b WHERE b.tenant_id = p_tenant;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := 'audit_auditchainbase'; deleted := n; RETURN NEXT;
    PERFORM set_config('foundry.erasing', coalesce(previous_erasing, ''), true);
    PERFORM set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
END
$$;
"""


def _previous() -> str:
    from importlib import import_module

    previous = import_module("apps.audit.migrations.0008_owner_erasure").SQL
    start = previous.index("CREATE FUNCTION public.audit_chain_purge")
    end = previous.index("CREATE FUNCTION public.audit_chain_head_drop")
    return previous[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_owner_erasure")]

    operations = [migrations.RunSQL(SQL, _previous())]
