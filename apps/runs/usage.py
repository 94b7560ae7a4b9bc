"""The one way every model call's usage is written.

A model call's row goes to the usage ledger (UsageRecord, append-only, in the tenant's schema)
once per (run, step) — a step done again after a worker was lost is not counted again — and
`usage_recorded`, which billing and metrics receive, is sent only when the row was written.

`usage_record` writes the row on its own. The engine writes it in the same statement as the
step and the run's counters: it puts `usage_insert`'s INSERT into that statement and hands what
the INSERT returned to `usage_written`.
"""

from django.db import connection
from django.dispatch import Signal

from apps.billing.services import COST_SQL, cost_params
from apps.runs.models import UsageRecord

# Sent with `record` (a UsageRecord) and `schema` (the tenant's schema name) after the row is written.
usage_recorded = Signal()

# COST_SQL is a constant of apps.billing (no input in it); every value is a bound parameter.
_INSERT = (
    "INSERT INTO runs_usagerecord (project, agent, run_id, step, provider, model, input_tokens, output_tokens,"  # noqa: S608
    f" cached_tokens, latency_ms, created_at, cost_usd) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {COST_SQL})"
    " ON CONFLICT (run_id, step) WHERE run_id IS NOT NULL DO NOTHING RETURNING id, cost_usd"
)


def usage_insert(record: UsageRecord) -> tuple[str, list]:
    """(SQL, params) of the INSERT that writes `record` unless its (run, step) is counted already,
    priced with the price in effect at `created_at`; it returns the new row's (id, cost_usd), or no row."""
    params = [
        record.project,
        record.agent,
        record.run_id,
        record.step,
        record.provider,
        record.model,
        record.input_tokens,
        record.output_tokens,
        record.cached_tokens,
        record.latency_ms,
        record.created_at,
        *cost_params(
            provider=record.provider,
            model=record.model,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cached_tokens=record.cached_tokens,
            at=record.created_at,
        ),
    ]
    return _INSERT, params


def usage_written(record: UsageRecord, pk: int | None, cost=None) -> UsageRecord | None:
    """After `usage_insert`'s INSERT ran, with the id and cost it returned: the record,
    `usage_recorded` sent; None, and nothing sent, when the INSERT wrote nothing."""
    if pk is None:
        return None
    record.pk = pk
    record.cost_usd = cost
    record._state.adding = False
    usage_recorded.send(sender=UsageRecord, record=record, schema=connection.schema_name)
    return record


def usage_record(
    *,
    project: str,
    agent: str,
    run_id,
    step: int,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    latency_ms: float = 0.0,
) -> UsageRecord | None:
    """Record one model call; None (nothing written, nothing sent) when that step is already counted."""
    record = UsageRecord(
        project=project,
        agent=agent,
        run_id=run_id,
        step=step,
        provider=provider,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        latency_ms=latency_ms,
    )
    sql, params = usage_insert(record)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return usage_written(record, *(row if row else (None, None)))
