"""The usage ledger moves to the public schema (apps/billing: billing_usage, tenant_id on every
row, Row-Level Security). This tenant's rows are copied there, then its own table is dropped."""

from django.db import migrations

# In this tenant's schema: its id, the scope that lets it write its own rows, and the copy.
COPY = """
SELECT set_config('foundry.tenant_ids', (SELECT id::text FROM public.tenants_tenant WHERE schema_name = current_schema()), true);
INSERT INTO public.billing_usage (tenant_id, project, agent, run_id, step, provider, model, input_tokens,
                                  output_tokens, cached_tokens, latency_ms, cost_usd, created_at)
SELECT t.id, u.project, u.agent, u.run_id, u.step, u.provider, u.model, u.input_tokens,
       u.output_tokens, u.cached_tokens, u.latency_ms, u.cost_usd, u.created_at
  FROM runs_usagerecord u JOIN public.tenants_tenant t ON t.schema_name = current_schema()
 ORDER BY u.id
ON CONFLICT DO NOTHING;
INSERT INTO public.billing_usage_month AS m (tenant_id, month, project, calls, tokens, cost_usd)
SELECT t.id, date_trunc('month', u.created_at AT TIME ZONE 'UTC')::date, p.project, count(*),
       sum(u.input_tokens + u.output_tokens), coalesce(sum(u.cost_usd), 0)
  FROM runs_usagerecord u JOIN public.tenants_tenant t ON t.schema_name = current_schema()
       CROSS JOIN LATERAL (VALUES (u.project), ('')) AS p(project)
 GROUP BY 1, 2, 3
ON CONFLICT (tenant_id, month, project) DO UPDATE
   SET calls = m.calls + EXCLUDED.calls, tokens = m.tokens + EXCLUDED.tokens, cost_usd = m.cost_usd + EXCLUDED.cost_usd;
SELECT set_config('foundry.tenant_ids', '', true);
DROP TRIGGER runs_usagerecord_append_only ON runs_usagerecord;
DROP TRIGGER runs_usagerecord_no_truncate ON runs_usagerecord;
"""


class Migration(migrations.Migration):
    dependencies = [("runs", "0005_usage_cost"), ("billing", "0002_usage_ledger")]

    operations = [
        migrations.RunSQL(COPY, migrations.RunSQL.noop),
        migrations.DeleteModel(name="UsageRecord"),
    ]
