"""Cheaper appends (measured by bench/audit.py):

- `audit_event_hash` is STABLE, not IMMUTABLE: it calls to_char and convert_to, which are STABLE,
  and the mismatch kept PostgreSQL from inlining it (a separately planned call per append).
- `audit_append` takes the chain head's lock first and creates the head only when there is
  none, instead of an INSERT … ON CONFLICT on every call; and it has no `SET search_path`
  clause (every name in it is schema-qualified, and it runs with its caller's rights), which
  saves a configuration save/restore per call.
- The heads table is UNLOGGED: moving a head writes no WAL. It is a cache of each chain's last
  event, which is logged: after a crash empties it (or on a standby promoted after failover),
  the first append of a chain rebuilds its head from that chain's last event.
"""

from importlib import import_module

from django.db import migrations

SQL = r"""
ALTER TABLE public.audit_auditchain SET UNLOGGED;

ALTER FUNCTION public.audit_event_hash(bigint, bigint, timestamptz, text, text, text, text, text, text, text, text,
    text, text, text) STABLE;

CREATE OR REPLACE FUNCTION public.audit_append(
    p_tenant bigint, p_actor_type text, p_actor_id text, p_action text, p_target_type text,
    p_target_id text, p_outcome text, p_ip text, p_user_agent text, p_request_id text, p_details text,
    p_actor_name text, p_actor_email text
) RETURNS TABLE (seq bigint, hash text, occurred_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    previous_tenant text := pg_catalog.current_setting('foundry.tenant_id', true);
    head_seq bigint;
    head_hash text;
    at timestamptz;
    digest text;
BEGIN
    PERFORM pg_catalog.set_config('foundry.tenant_id', p_tenant::text, true);
    SELECT c.seq, c.hash INTO head_seq, head_hash FROM public.audit_auditchain c WHERE c.tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        -- A new chain, or a head lost with the unlogged table: rebuilt from the last event.
        INSERT INTO public.audit_auditchain AS c (tenant_id, seq, hash, updated_at)
            SELECT p_tenant, coalesce(last.seq, 0), coalesce(last.hash, pg_catalog.repeat('0', 64)),
                   pg_catalog.clock_timestamp()
              FROM (SELECT NULL) AS one
              LEFT JOIN LATERAL (SELECT e.seq, e.hash FROM public.audit_auditevent e WHERE e.tenant_id = p_tenant
                                  ORDER BY e.seq DESC LIMIT 1) AS last ON true
            ON CONFLICT (tenant_id) DO NOTHING;
        SELECT c.seq, c.hash INTO head_seq, head_hash FROM public.audit_auditchain c
            WHERE c.tenant_id = p_tenant FOR UPDATE;
    END IF;
    head_seq := head_seq + 1;
    at := pg_catalog.clock_timestamp();
    digest := public.audit_event_hash(p_tenant, head_seq, at, p_actor_type, p_actor_id, p_action, p_target_type,
        p_target_id, p_outcome, p_ip, p_user_agent, p_request_id, p_details, head_hash);
    INSERT INTO public.audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,
        target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)
        VALUES (p_tenant, head_seq, at, p_actor_type, p_actor_id, p_action, p_target_type, p_target_id, p_outcome,
        p_ip, p_user_agent, p_request_id, p_details, head_hash, digest);
    UPDATE public.audit_auditchain c SET seq = head_seq, hash = digest, updated_at = at WHERE c.tenant_id = p_tenant;
    IF p_actor_name IS NOT NULL OR p_actor_email IS NOT NULL THEN
        INSERT INTO public.audit_auditactor AS a (tenant_id, actor_id, actor_type, display_name, email, first_seen_at)
            VALUES (p_tenant, p_actor_id, p_actor_type, p_actor_name, p_actor_email, at)
            ON CONFLICT (tenant_id, actor_id) DO UPDATE
                SET display_name = EXCLUDED.display_name, email = EXCLUDED.email
                WHERE a.erased_at IS NULL
                  AND (a.display_name, a.email) IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.email);
    END IF;
    PERFORM pg_catalog.set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
    RETURN QUERY SELECT head_seq, digest, at;
END
$$;
ALTER FUNCTION public.audit_append(bigint, text, text, text, text, text, text, text, text, text, text, text, text)
    RESET ALL;
"""


# Back to 0002's functions (a review found the append left as this one, with the heads logged again).
_CANONICAL = import_module("apps.audit.migrations.0002_chained_trail").CANONICAL
REVERSE = f"""
ALTER TABLE public.audit_auditchain SET LOGGED;
ALTER FUNCTION public.audit_event_hash(bigint, bigint, timestamptz, text, text, text, text, text, text, text, text,
    text, text, text) IMMUTABLE;
{_CANONICAL[_CANONICAL.index("CREATE FUNCTION public.audit_append("):].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)}
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_audit_sink")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
