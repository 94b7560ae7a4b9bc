"""The one hook every model call's usage goes through.

`usage_record` writes the call's row to the usage ledger (UsageRecord, append-only, in the
tenant's schema) once per (run, step) — a step replayed after a worker was lost is not counted
again — and then sends `usage_recorded`, which billing and metrics receive.
"""

from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal

from apps.runs.models import UsageRecord

# Sent with `record` (a UsageRecord) and `schema` (the tenant's schema name) after the row is written.
usage_recorded = Signal()


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
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        return None  # this (run, step) is counted already
    usage_recorded.send(sender=UsageRecord, record=record, schema=connection.schema_name)
    return record
