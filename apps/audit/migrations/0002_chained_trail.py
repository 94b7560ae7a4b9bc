"""The chained audit trail (see models.py): tables, the append function, and the database's
own guarantees — append-only triggers, privileges, forced Row-Level Security.

RLS: every table is visible only where `tenant_id` equals the transaction's
`foundry.tenant_id` setting (apps/audit/scope.py sets it with SET LOCAL semantics, so a
pooled connection never carries it into another transaction); no setting, no rows. The policy
compares the column with a STABLE expression, so the (tenant_id, …) indexes stay usable.
"""

from django.db import migrations, models

TABLES = ("audit_auditevent", "audit_auditchain", "audit_auditactor", "audit_auditcheckpoint")
APPEND_ONLY = ("audit_auditevent", "audit_auditcheckpoint")
CURRENT_TENANT = "NULLIF(current_setting('foundry.tenant_id', true), '')::bigint"

CANONICAL = r"""
CREATE FUNCTION public.audit_netstring(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT length(value)::text || ':' || value || ',' $$;

-- The hash of one event: the same bytes as apps/audit/chain.py event_hash.
CREATE FUNCTION public.audit_event_hash(
    p_tenant bigint, p_seq bigint, p_at timestamptz, p_actor_type text, p_actor_id text, p_action text,
    p_target_type text, p_target_id text, p_outcome text, p_ip text, p_user_agent text,
    p_request_id text, p_details text, p_prev_hash text
) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(
        public.audit_netstring('1') || public.audit_netstring(p_tenant::text) || public.audit_netstring(p_seq::text)
        || public.audit_netstring(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || public.audit_netstring(p_actor_type) || public.audit_netstring(p_actor_id)
        || public.audit_netstring(p_action) || public.audit_netstring(p_target_type)
        || public.audit_netstring(p_target_id) || public.audit_netstring(p_outcome)
        || public.audit_netstring(p_ip) || public.audit_netstring(p_user_agent)
        || public.audit_netstring(p_request_id) || public.audit_netstring(p_details)
        || public.audit_netstring(p_prev_hash), 'UTF8')), 'hex')
$$;

-- Append one event to chain p_tenant: lock the head, number, hash, insert, move the head.
-- The actor's personal data (if given) goes to audit_auditactor, never into the event.
CREATE FUNCTION public.audit_append(
    p_tenant bigint, p_actor_type text, p_actor_id text, p_action text, p_target_type text,
    p_target_id text, p_outcome text, p_ip text, p_user_agent text, p_request_id text, p_details text,
    p_actor_name text, p_actor_email text
) RETURNS TABLE (seq bigint, hash text, occurred_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    previous_tenant text := current_setting('foundry.tenant_id', true);
    head_seq bigint;
    head_hash text;
    at timestamptz;
    digest text;
BEGIN
    PERFORM set_config('foundry.tenant_id', p_tenant::text, true);
    INSERT INTO public.audit_auditchain AS c (tenant_id, seq, hash, updated_at)
        VALUES (p_tenant, 0, repeat('0', 64), clock_timestamp())
        ON CONFLICT (tenant_id) DO NOTHING;
    SELECT c.seq, c.hash INTO head_seq, head_hash FROM public.audit_auditchain c WHERE c.tenant_id = p_tenant FOR UPDATE;
    head_seq := head_seq + 1;
    at := clock_timestamp();
    digest := public.audit_event_hash(p_tenant, head_seq, at, p_actor_type, p_actor_id, p_action, p_target_type,
        p_target_id, p_outcome, p_ip, p_user_agent, p_request_id, p_details, head_hash);
    INSERT INTO public.audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type, target_id,
        outcome, ip, user_agent, request_id, details, prev_hash, hash)
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
    PERFORM set_config('foundry.tenant_id', coalesce(previous_tenant, ''), true);
    RETURN QUERY SELECT head_seq, digest, at;
END
$$;
"""

GUARDS = "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION public.foundry_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION public.foundry_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM CURRENT_USER;
"""
    for table in APPEND_ONLY
) + "".join(
    f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY {table}_tenant ON {table} USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT});
"""
    for table in TABLES
)

SQL = CANONICAL + GUARDS

REVERSE = """
DROP FUNCTION public.audit_append(bigint, text, text, text, text, text, text, text, text, text, text, text, text);
DROP FUNCTION public.audit_event_hash(bigint, bigint, timestamptz, text, text, text, text, text, text, text, text, text, text, text);
DROP FUNCTION public.audit_netstring(text);
""" + "".join(f"DROP POLICY {table}_tenant ON {table};\n" for table in TABLES)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial"), ("tenants", "0002_immutable_rows")]

    operations = [
        migrations.DeleteModel(name="AuditEvent"),
        migrations.CreateModel(
            name="AuditChain",
            fields=[
                ("tenant_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("updated_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="AuditActor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tenant_id", models.BigIntegerField()),
                ("actor_id", models.CharField(max_length=100)),
                ("actor_type", models.CharField(max_length=20)),
                ("display_name", models.CharField(blank=True, max_length=255, null=True)),
                ("email", models.CharField(blank=True, max_length=254, null=True)),
                ("first_seen_at", models.DateTimeField(auto_now_add=True)),
                ("erased_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("tenant_id", "actor_id"), name="audit_actor_chain_id")],
            },
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tenant_id", models.BigIntegerField()),
                ("seq", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("signed_at", models.DateTimeField()),
                ("key_id", models.CharField(max_length=64)),
                ("signature", models.CharField(max_length=200)),
            ],
            options={
                "ordering": ["tenant_id", "-seq"],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant_id", "seq", "key_id"), name="audit_checkpoint_once")
                ],
            },
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tenant_id", models.BigIntegerField()),
                ("seq", models.BigIntegerField()),
                ("occurred_at", models.DateTimeField()),
                ("actor_type", models.CharField(max_length=20)),
                ("actor_id", models.CharField(max_length=100)),
                ("action", models.CharField(max_length=100)),
                ("target_type", models.CharField(blank=True, max_length=100)),
                ("target_id", models.CharField(blank=True, max_length=200)),
                (
                    "outcome",
                    models.CharField(
                        choices=[("success", "Success"), ("failure", "Failure"), ("denied", "Denied")], max_length=10
                    ),
                ),
                ("ip", models.CharField(blank=True, max_length=45)),
                ("user_agent", models.CharField(blank=True, max_length=512)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                ("details", models.TextField(default="{}")),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["tenant_id", "-seq"],
                "indexes": [
                    models.Index(fields=["tenant_id", "occurred_at"], name="audit_event_time"),
                    models.Index(fields=["tenant_id", "action", "seq"], name="audit_event_action"),
                    models.Index(fields=["tenant_id", "actor_id", "seq"], name="audit_event_actor"),
                ],
                "constraints": [models.UniqueConstraint(fields=("tenant_id", "seq"), name="audit_event_chain_seq")],
            },
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
