"""The usage ledger moves to the public schema (apps/billing: billing_usage, tenant_id on every
row, Row-Level Security). This tenant's rows are copied there, then its own table is dropped.

Reversed, the table comes back as 0002 left it (append-only, so 0002 can be reversed in turn),
holding every ledger row of this tenant, and the month totals lose what the copy added to them:
migrating forward again adds it back, to the same totals (the ledger's rows stay: it refuses
deletion, and the copy skips rows it already holds)."""

from django.db import migrations

# The month totals of this tenant's rows in runs_usagerecord, per month and project and in all ('').
TOTALS = """
SELECT t.id AS tenant_id, date_trunc('month', u.created_at AT TIME ZONE 'UTC')::date AS month, p.project,
       count(*) AS calls, sum(u.input_tokens + u.output_tokens) AS tokens, coalesce(sum(u.cost_usd), 0) AS cost_usd
  FROM runs_usagerecord u JOIN public.tenants_tenant t ON t.schema_name = current_schema()
       CROSS JOIN LATERAL (VALUES (u.project), ('')) AS p(project)
 GROUP BY 1, 2, 3
"""

# In this tenant's schema: its id, the scope that lets it write its own rows, and the copy.
COPY = f"""
SELECT set_config('foundry.tenant_ids', (SELECT id::text FROM public.tenants_tenant WHERE schema_name = current_schema()), true);
INSERT INTO public.billing_usage (tenant_id, project, agent, run_id, step, provider, model, input_tokens,
                                  output_tokens, cached_tokens, latency_ms, cost_usd, created_at)
SELECT t.id, u.project, u.agent, u.run_id, u.step, u.provider, u.model, u.input_tokens,
       u.output_tokens, u.cached_tokens, u.latency_ms, u.cost_usd, u.created_at
  FROM runs_usagerecord u JOIN public.tenants_tenant t ON t.schema_name = current_schema()
 -- A row the ledger holds already (migrated forward again after a reversal): a run's step by the
 -- unique index (ON CONFLICT), a row of no run by all it says.
 WHERE u.run_id IS NOT NULL OR NOT EXISTS (
       SELECT 1 FROM public.billing_usage b
        WHERE b.tenant_id = t.id AND b.run_id IS NULL AND b.step IS NOT DISTINCT FROM u.step
          AND (b.project, b.agent, b.provider, b.model, b.input_tokens, b.output_tokens, b.cached_tokens,
               b.latency_ms, b.created_at)
              = (u.project, u.agent, u.provider, u.model, u.input_tokens, u.output_tokens, u.cached_tokens,
                 u.latency_ms, u.created_at)
          AND b.cost_usd IS NOT DISTINCT FROM u.cost_usd)
 ORDER BY u.id
ON CONFLICT DO NOTHING;
INSERT INTO public.billing_usage_month AS m (tenant_id, month, project, calls, tokens, cost_usd)
{TOTALS}
ON CONFLICT (tenant_id, month, project) DO UPDATE
   SET calls = m.calls + EXCLUDED.calls, tokens = m.tokens + EXCLUDED.tokens, cost_usd = m.cost_usd + EXCLUDED.cost_usd;
SELECT set_config('foundry.tenant_ids', '', true);
DROP TRIGGER runs_usagerecord_append_only ON runs_usagerecord;
DROP TRIGGER runs_usagerecord_no_truncate ON runs_usagerecord;
"""


COPY_BACK = f"""
SELECT set_config('foundry.tenant_ids', (SELECT id::text FROM public.tenants_tenant WHERE schema_name = current_schema()), true);
INSERT INTO runs_usagerecord (project, agent, run_id, step, provider, model, input_tokens, output_tokens,
                              cached_tokens, latency_ms, cost_usd, created_at)
SELECT u.project, u.agent, u.run_id, u.step, u.provider, u.model, u.input_tokens, u.output_tokens,
       u.cached_tokens, u.latency_ms, u.cost_usd, u.created_at
  FROM public.billing_usage u JOIN public.tenants_tenant t ON t.id = u.tenant_id AND t.schema_name = current_schema()
 ORDER BY u.id;
UPDATE public.billing_usage_month m
   SET calls = m.calls - s.calls, tokens = m.tokens - s.tokens, cost_usd = m.cost_usd - s.cost_usd
  FROM ({TOTALS}) s
 WHERE m.tenant_id = s.tenant_id AND m.month = s.month AND m.project = s.project;
SELECT set_config('foundry.tenant_ids', '', true);
CREATE TRIGGER runs_usagerecord_append_only BEFORE UPDATE OR DELETE ON runs_usagerecord
    FOR EACH ROW EXECUTE FUNCTION public.foundry_refuse_change();
CREATE TRIGGER runs_usagerecord_no_truncate BEFORE TRUNCATE ON runs_usagerecord
    FOR EACH STATEMENT EXECUTE FUNCTION public.foundry_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("runs", "0005_usage_cost"), ("billing", "0002_usage_ledger")]

    operations = [
        migrations.RunSQL(COPY, COPY_BACK),
        migrations.DeleteModel(name="UsageRecord"),
    ]
