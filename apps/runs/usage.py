"""The one way every model call's usage is written.

A model call's row goes to the usage ledger (apps/billing UsageRecord: the public schema,
`tenant_id` on every row, Row-Level Security) once per (tenant, run, step) — a step done again
after a worker was lost is not counted again — priced with the price in effect then, and the
tenant's running totals for the month (UsageMonth, what quotas are checked against) grow in the
same statement. `usage_recorded`, which billing and metrics receive, is sent only when the row
was written; budget alerts (apps/billing/quotas.py) are looked at then.

The statement scopes its own transaction to the tenant (`set_config(..., true)` in the INSERT's
source row, before the policy checks the row), so in autocommit it costs no extra round trip and
leaves nothing behind; inside a caller's transaction it runs in `usage_scope`, which puts the
caller's scope back.

`usage_record` writes the row on its own. The engine writes it in the same statement as the
step and the run's counters: it puts `usage_ctes` into that statement, selects `USAGE_RESULT`
and hands what that returned to `usage_written`.
"""

import contextlib

from django.db import connection
from django.dispatch import Signal

from apps.billing.models import UsageRecord
from apps.billing.quotas import month_totals, quota_after_usage
from apps.billing.rls import SETTING, usage_scope
from apps.billing.services import COST_SQL, cost_params

# Sent with `record` (a billing UsageRecord) and `schema` (the tenant's schema name) after the row is written.
usage_recorded = Signal()

# COST_SQL is a constant of apps.billing (no input in it); every value is a bound parameter.
_CTES = (
    "usage AS (INSERT INTO public.billing_usage (tenant_id, project, agent, run_id, step, provider, model,"  # noqa: S608
    " input_tokens, output_tokens, cached_tokens, cache_write_tokens, latency_ms, created_at, cost_usd)"
    f" SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {COST_SQL}"
    f" FROM (SELECT set_config('{SETTING}', %s, true)) AS scope"
    "{only_with}"  # usage_ctes(only_with=...): no row unless that CTE returned one
    " ON CONFLICT (tenant_id, run_id, step) WHERE run_id IS NOT NULL DO NOTHING"
    " RETURNING id, tenant_id, project, input_tokens + output_tokens AS tokens, cost_usd, created_at), "
    "month AS (INSERT INTO public.billing_usage_month AS m (tenant_id, month, project, calls, tokens, cost_usd)"
    " SELECT u.tenant_id, date_trunc('month', u.created_at AT TIME ZONE 'UTC')::date, p.project, 1, u.tokens,"
    " coalesce(u.cost_usd, 0) FROM usage u CROSS JOIN LATERAL (VALUES (u.project), ('')) AS p(project)"
    " ON CONFLICT (tenant_id, month, project) DO UPDATE SET calls = m.calls + 1, tokens = m.tokens + EXCLUDED.tokens,"
    " cost_usd = m.cost_usd + EXCLUDED.cost_usd"
    " RETURNING m.month, m.project, m.tokens, m.cost_usd, m.tokens_alerted, m.cost_alerted, m.plan_tokens_alerted,"
    " m.tokens_alerted_limit, m.cost_alerted_limit, m.plan_tokens_alerted_limit)"
)
# What a statement with `usage_ctes` in it selects: the new row's id and cost (NULL: nothing
# written) and the month's totals it led to (rows of month, project, tokens, cost, alerted shares).
USAGE_RESULT = (
    "(SELECT id FROM usage), (SELECT cost_usd FROM usage),"
    " (SELECT json_agg(json_build_array(month, project, tokens, cost_usd::text, tokens_alerted, cost_alerted,"
    " plan_tokens_alerted, tokens_alerted_limit::text, cost_alerted_limit::text, plan_tokens_alerted_limit::text))"
    " FROM month)"
)


def usage_ctes(record: UsageRecord, *, only_with: str = "") -> tuple[str, list]:
    """(SQL, params) of the `usage` and `month` CTEs that write `record` unless its (tenant, run,
    step) is counted already, priced with the price in effect at `created_at`; with `only_with`
    (the name of an earlier CTE of the statement), only when that CTE returned a row."""
    params = [
        record.tenant_id,
        record.project,
        record.agent,
        record.run_id,
        record.step,
        record.provider,
        record.model,
        record.input_tokens,
        record.output_tokens,
        record.cached_tokens,
        record.cache_write_tokens,
        record.latency_ms,
        record.created_at,
        *cost_params(
            provider=record.provider,
            model=record.model,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cached_tokens=record.cached_tokens,
            cache_write_tokens=record.cache_write_tokens,
            at=record.created_at,
        ),
        str(record.tenant_id),
    ]
    return _CTES.replace("{only_with}", f" CROSS JOIN {only_with}" if only_with else ""), params


def usage_guard(record: UsageRecord):
    """What the statement writing `record` runs in: nothing in autocommit (its transaction ends
    with it), `usage_scope` inside a caller's transaction (a savepoint, the caller's scope restored)."""
    return usage_scope(record.tenant_id) if connection.in_atomic_block else contextlib.nullcontext()


def usage_written(record: UsageRecord, pk: int | None, cost=None, months=None) -> UsageRecord | None:
    """After the statement ran, with what `USAGE_RESULT` returned: the record, `usage_recorded`
    sent and budget alerts written; None, and nothing done, when nothing was written."""
    if pk is None:
        return None
    record.pk = pk
    record.cost_usd = cost
    record._state.adding = False
    record.month_totals = month_totals(months or [])
    quota_after_usage(record, months or [])
    usage_recorded.send(sender=UsageRecord, record=record, schema=connection.schema_name)
    return record


def usage_record(
    *,
    tenant_id: int,
    project: str,
    agent: str,
    run_id,
    step: int,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    latency_ms: float = 0.0,
    created_at=None,
) -> UsageRecord | None:
    """Record one model call; None (nothing written, nothing sent) when that step is already counted."""
    record = UsageRecord(
        tenant_id=tenant_id,
        project=project,
        agent=agent,
        run_id=run_id,
        step=step,
        provider=provider,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
        latency_ms=latency_ms,
    )
    if created_at is not None:
        record.created_at = created_at
    ctes, params = usage_ctes(record)
    with usage_guard(record), connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT {USAGE_RESULT}", params)
        row = cursor.fetchone()
    return usage_written(record, *row)
