"""Deleting from the audit trail goes through functions of the tables' owner, and only them.

The app role could delete events, checkpoints and chain heads in any transaction that set
`foundry.erasing` itself (the guard trigger's gate): SQL injected into the application could cut
a chain's tail, and its head with it, unseen. Now the app role holds no DELETE on those tables
(foundry/db/roles.py) and calls, as retention, import and purge did in Python:

- `audit_chain_prune(tenant, before)`: the events before `before`, only up to the last signed
  checkpoint at or before that boundary, which stays and vouches for the new start (verify.py),
  and the checkpoints before it; the chain's last event always stays;
- `audit_chain_purge(tenant)`: a whole chain, only a workspace's scheduled for deletion;
- `audit_chain_head_drop(tenant)`: the unlogged head, rebuilt by the next append (an import).

SECURITY DEFINER with a fixed search_path: they run as the owner, whoever calls them, and look up
nothing through the caller's path. Each sets the chain's Row-Level Security setting and the
erasing gate for itself and puts both back. Where one role owns everything they change nothing.
"""

from django.db import migrations

SQL = """
CREATE FUNCTION public.audit_chain_prune(p_tenant bigint, p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    previous_tenant text := current_setting('foundry.tenant_id', true);
    previous_erasing text := current_setting('foundry.erasing', true);
    last_seq bigint;
    boundary bigint;
    anchor_seq bigint;
    anchor_hash text;
    base_first bigint;
    base_hash_tenant bigint;
    deleted bigint := 0;
BEGIN
    PERFORM set_config('foundry.tenant_id', p_tenant::text, true);
    PERFORM 1 FROM public.audit_auditchain WHERE tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN  -- a head rebuilt by the next append: lock the chain through its base
        PERFORM 1 FROM public.audit_auditchainbase WHERE tenant_id = p_tenant FOR UPDATE;
    END IF;
    SELECT max(seq) INTO last_seq FROM public.audit_auditevent WHERE tenant_id = p_tenant;
    SELECT least(min(seq), last_seq) INTO boundary
      FROM public.audit_auditevent WHERE tenant_id = p_tenant AND occurred_at >= p_before;
    boundary := coalesce(boundary, last_seq);
    SELECT seq, hash INTO anchor_seq, anchor_hash FROM public.audit_auditcheckpoint
     WHERE tenant_id = p_tenant AND seq < boundary ORDER BY seq DESC LIMIT 1;
    SELECT first_seq, hash_tenant_id INTO base_first, base_hash_tenant
      FROM public.audit_auditchainbase WHERE tenant_id = p_tenant;
    IF anchor_seq IS NOT NULL AND anchor_seq >= coalesce(base_first, 1) THEN
        PERFORM set_config('foundry.erasing', 'on', true);
        DELETE FROM public.audit_auditevent WHERE tenant_id = p_tenant AND seq <= anchor_seq;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        DELETE FROM public.audit_auditcheckpoint WHERE tenant_id = p_tenant AND seq < anchor_seq;
        INSERT INTO public.audit_auditchainbase AS b (tenant_id, hash_tenant_id, first_seq, first_prev_hash, updated_at)
            VALUES (p_tenant, coalesce(base_hash_tenant, p_tenant), anchor_seq + 1, anchor_hash, now())
            ON CONFLICT (tenant_id) DO UPDATE
                SET first_seq = EXCLUDED.first_seq, first_prev_hash = EXCLUDED.first_prev_hash,
                    updated_at = EXCLUDED.updated_at;
    END IF;
    PERFORM set_config('foundry.erasing', coalesce(previous_erasing, ''), true);
    PERFORM set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
    RETURN deleted;
END
$$;

CREATE FUNCTION public.audit_chain_purge(p_tenant bigint) RETURNS TABLE (table_name text, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    previous_tenant text := current_setting('foundry.tenant_id', true);
    previous_erasing text := current_setting('foundry.erasing', true);
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM public.tenants_tenant t WHERE t.id = p_tenant AND t.status = 'deleting') THEN
        RAISE EXCEPTION 'the audit chain of workspace % is purged only with the workspace, once scheduled for deletion',
            p_tenant USING ERRCODE = 'insufficient_privilege';
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

CREATE FUNCTION public.audit_chain_head_drop(p_tenant bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    previous_tenant text := current_setting('foundry.tenant_id', true);
BEGIN
    PERFORM set_config('foundry.tenant_id', p_tenant::text, true);
    DELETE FROM public.audit_auditchain WHERE tenant_id = p_tenant;
    PERFORM set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
END
$$;
"""

REVERSE = """
DROP FUNCTION public.audit_chain_prune(bigint, timestamptz);
DROP FUNCTION public.audit_chain_purge(bigint);
DROP FUNCTION public.audit_chain_head_drop(bigint);
"""


def _restricted(apps, schema_editor) -> None:
    """In the migration's own transaction: PostgreSQL lets PUBLIC execute a new function, and
    migrate_platform restricts these only once every migration has run; a run that stopped after
    this one left them callable by any role that logs in."""
    from foundry.db.roles import definer_functions_restrict

    definer_functions_restrict(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_one_statement_head"), ("tenants", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE), migrations.RunPython(_restricted, migrations.RunPython.noop)]
