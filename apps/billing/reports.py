"""Reads of the usage ledger that more than one interface needs, each inside the tenant's
Row-Level Security scope (rls.py)."""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, Q, Sum

from apps.billing.models import UsageRecord
from apps.billing.rls import usage_scope

USAGE_GROUPS = ("project", "agent", "provider", "model")


def usage_summary(
    *, tenant_id: int, start: datetime, end: datetime, by: Sequence[str] = ("agent", "model")
) -> list[dict]:
    """A tenant's model calls and tokens in [start, end), one row per group of `by`
    (a non-empty subset of USAGE_GROUPS), ordered by the group's names.

    Rows are dicts: the group's values, `calls`, `input_total`, `output_total`, `cached_total`,
    `cost_total` (USD of the priced calls; None if none was) and `unpriced` (calls without a price).
    A model is always grouped with its provider (two providers may name models alike)."""
    unknown = [name for name in by if name not in USAGE_GROUPS]
    if unknown or not by:
        raise ValueError(f"usage is grouped by some of {USAGE_GROUPS}, not {list(by)}")
    keys = [name for name in USAGE_GROUPS if name in by or (name == "provider" and "model" in by)]
    rows = (
        UsageRecord.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end)
        .values(*keys)
        .annotate(
            calls=Count("id"),
            input_total=Sum("input_tokens"),
            output_total=Sum("output_tokens"),
            cached_total=Sum("cached_tokens"),
            cost_total=Sum("cost_usd"),
            unpriced=Count("id", filter=Q(cost_usd__isnull=True)),
        )
        .order_by(*keys)
    )
    with usage_scope(tenant_id):
        return list(rows)
