"""Billing's periodic work: the hourly roll-up of the usage ledger (apps/billing/rollups.py).

The beat job fans out one task per tenant and day, each a single idempotent statement, so a
task delivered twice, or a run overlapping the next, writes the same rows. Every tenant is
rolled, suspended ones too: their usage up to the suspension still belongs on their statement.
Besides yesterday and today, a tenant's days that no roll-up saw to their end (`rollup_behind`).
"""

import logging
from datetime import date

from celery import shared_task
from django.utils import timezone
from redis.exceptions import RedisError

from apps.billing.rollups import rollup_behind, rollup_days, usage_rollup
from apps.tenants.selectors import tenant_list
from foundry.telemetry import tenant_bound_by_id

logger = logging.getLogger(__name__)


@shared_task(name="billing.rollup_tenant", ignore_result=True)
def usage_rollup_tenant(tenant_id: int, day: str) -> int:
    """Recompute one tenant's day (ISO date) of UsageDay from the ledger (a suspended tenant's too)."""
    with tenant_bound_by_id(tenant_id):
        return usage_rollup(tenant_id=tenant_id, day=date.fromisoformat(day), began=timezone.now())


@shared_task(name="billing.rollup", ignore_result=True)
def usage_rollup_recent() -> int:
    """Every hour (beat): re-roll yesterday and today for every tenant, and its days before that
    no roll-up saw to their end; the number of tasks queued."""
    tenant_ids = list(tenant_list().order_by("pk").values_list("pk", flat=True))
    recent = rollup_days()
    queued = 0
    for tenant_id in tenant_ids:
        try:
            behind = rollup_behind(tenant_id)
        except RedisError:  # the marks cannot be read: caught up by the next run
            logger.warning("usage roll-up of tenant %s: days behind not checked (Redis)", tenant_id)
            behind = []
        for day in [*behind, *recent]:
            usage_rollup_tenant.delay(tenant_id, day.isoformat())
            queued += 1
    return queued
