"""The append moves its chain's head in one statement (measured by bench/audit.py).

`audit_append` took the head with `SELECT ... FOR UPDATE`, then wrote it back with an `UPDATE`:
two statements inside the window in which every other writer of that chain waits. Now one
`UPDATE ... RETURNING` locks the head, computes the next sequence number, time and hash from
the row it locked, and writes them; `prev_hash` keeps the hash it replaced, which is how the
statement hands the previous hash back (RETURNING sees only the new row).

The time is still read once the head is held: `clock_timestamp()` sits in the SET's sub-select,
which PostgreSQL evaluates again on the newest version of the row when it had to wait for
another writer (EvalPlanQual), so in each chain time never goes back as seq goes up
(tests/audit/test_chain.py, four processes on one chain). `OFFSET 0` keeps the planner from
folding the sub-select into the SET, where the time would be read twice (hash and column).
"""

from importlib import import_module

from django.db import migrations, models

SQL = """
CREATE OR REPLACE FUNCTION public.audit_append(
    p_tenant bigint, p_actor_type text, p_actor_id text, p_action text, p_target_type text,
    p_target_id text, p_outcome text, p_ip text, p_user_agent text, p_request_id text, p_details text,
    p_actor_name text, p_actor_email text, OUT seq bigint, OUT hash text, OUT occurred_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    previous_tenant text := pg_catalog.current_setting('foundry.tenant_id', true);
    head_hash text;
BEGIN
    PERFORM pg_catalog.set_config('foundry.tenant_id', p_tenant::text, true);
    LOOP
        UPDATE public.audit_auditchain c
           SET (seq, prev_hash, hash, updated_at) = (
               SELECT c.seq + 1, c.hash,
                      public.audit_event_hash(coalesce(c.hash_tenant_id, p_tenant), c.seq + 1, now.at, p_actor_type,
                          p_actor_id, p_action, p_target_type, p_target_id, p_outcome, p_ip, p_user_agent,
                          p_request_id, p_details, c.hash),
                      now.at
                 FROM (SELECT pg_catalog.clock_timestamp() AS at OFFSET 0) AS now)
         WHERE c.tenant_id = p_tenant
        RETURNING c.seq, c.prev_hash, c.hash, c.updated_at INTO seq, head_hash, hash, occurred_at;
        EXIT WHEN FOUND;
        -- A new chain, or a head lost with the unlogged table: rebuilt from the last event and the base.
        INSERT INTO public.audit_auditchain AS c (tenant_id, seq, hash, hash_tenant_id, updated_at)
            SELECT p_tenant, coalesce(last.seq, base.first_seq - 1, 0),
                   coalesce(last.hash, base.first_prev_hash, pg_catalog.repeat('0', 64)),
                   coalesce(base.hash_tenant_id, p_tenant), pg_catalog.clock_timestamp()
              FROM (SELECT NULL) AS one
              LEFT JOIN LATERAL (SELECT e.seq, e.hash FROM public.audit_auditevent e WHERE e.tenant_id = p_tenant
                                  ORDER BY e.seq DESC LIMIT 1) AS last ON true
              LEFT JOIN public.audit_auditchainbase base ON base.tenant_id = p_tenant
            ON CONFLICT (tenant_id) DO NOTHING;
    END LOOP;
    INSERT INTO public.audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,
        target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)
        VALUES (p_tenant, seq, occurred_at, p_actor_type, p_actor_id, p_action, p_target_type, p_target_id,
        p_outcome, p_ip, p_user_agent, p_request_id, p_details, head_hash, hash);
    IF p_actor_name IS NOT NULL OR p_actor_email IS NOT NULL THEN
        INSERT INTO public.audit_auditactor AS a (tenant_id, actor_id, actor_type, display_name, email, first_seen_at)
            VALUES (p_tenant, p_actor_id, p_actor_type, p_actor_name, p_actor_email, audit_append.occurred_at)
            ON CONFLICT (tenant_id, actor_id) DO UPDATE
                SET display_name = EXCLUDED.display_name, email = EXCLUDED.email
                WHERE a.erased_at IS NULL
                  AND (a.display_name, a.email) IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.email);
    END IF;
    PERFORM pg_catalog.set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
END
$$;
"""


def _previous() -> str:
    return import_module("apps.audit.migrations.0006_leaner_append").SQL


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_leaner_append")]

    operations = [
        migrations.AddField(
            model_name="auditchain",
            name="prev_hash",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.RunSQL(SQL, _previous()),
    ]
