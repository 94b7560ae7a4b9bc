"""`audit_chain_prune` never cuts the last day's events, whatever `before` it is given.

It takes any checkpoint row before the boundary as its anchor, and the app role may insert
checkpoints (the database cannot check an Ed25519 signature): SQL injected into the application
could insert one just below the head and prune everything but the last event — the trail of
what it had just done included. Now the boundary is at most a day ago, the shortest retention a
workspace may set (`audit_days` ≥ 1): the events of the last day stay, signed or not, and an
anchor it made itself is reported by `audit_verify` (`signature_invalid`, `anchor_unsigned`).
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION public.audit_chain_prune(p_tenant bigint, p_before timestamptz) RETURNS bigint
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
    -- Never the last day's events, whatever the caller asks (retention keeps at least a day).
    p_before := least(p_before, clock_timestamp() - interval '1 day');
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
"""


def _previous() -> str:
    from importlib import import_module

    previous = import_module("apps.audit.migrations.0008_owner_erasure").SQL
    start = previous.index("CREATE FUNCTION public.audit_chain_prune")
    end = previous.index("CREATE FUNCTION public.audit_chain_purge")
    return previous[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_purge_gate")]

    operations = [migrations.RunSQL(SQL, _previous())]
