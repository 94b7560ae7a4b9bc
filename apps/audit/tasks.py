import logging

from celery import shared_task
from django.conf import settings

from apps.audit import delivery
from apps.audit.delivery import RUN_TIME_LIMIT
from apps.audit.models import PLATFORM
from apps.audit.services import audit_checkpoint_sign
from apps.tenants.models import Tenant
from foundry.telemetry import tenant_bound_by_id

logger = logging.getLogger(__name__)


@shared_task(name="audit.sign_heads", ignore_result=True)
def audit_sign_heads() -> int:
    """Beat: sign the head of every chain that moved since its last checkpoint."""
    chains = [PLATFORM, *Tenant.objects.values_list("pk", flat=True)]
    signed = 0
    for tenant_id in chains:
        try:
            signed += audit_checkpoint_sign(tenant_id) is not None
        except Exception:  # one chain's failure (its file, its rows) never leaves the others unsigned
            logger.exception("audit: signing the head of chain %s failed; the other chains go on", tenant_id)
    return signed


# --- SIEM delivery (apps/audit/delivery.py) ----------------------------------------------------


@shared_task(name="audit.deliver_sinks", ignore_result=True)
def audit_deliver_sinks() -> int:
    """Beat: queue a delivery run for every sink with events waiting and no back-off pending."""
    due = delivery.sinks_due()
    for tenant_id, sink_id in due:
        # A copy still waiting when the next beat comes is of no use: that beat queues another.
        audit_deliver_sink.apply_async(
            args=[tenant_id, sink_id], expires=DELIVERY_COPY_EXPIRES, queue=settings.FOUNDRY_AUDIT_DELIVERY_QUEUE
        )
    return len(due)


# One delivery run: its time budget plus a last batch's sends and retries (delivery.py), and the
# name lookups (each within IO_TIMEOUT); past the soft limit the run stops, past the hard one
# (delivery.RUN_TIME_LIMIT, for which its delivery slots are leased) the worker process is replaced.
DELIVERY_SOFT_LIMIT = RUN_TIME_LIMIT - 60
DELIVERY_COPY_EXPIRES = 60


@shared_task(
    name="audit.deliver_sink",
    ignore_result=True,
    soft_time_limit=DELIVERY_SOFT_LIMIT,
    time_limit=RUN_TIME_LIMIT,
)
def audit_deliver_sink(tenant_id: int, sink_id: int) -> str:
    """Deliver one sink's pending events (a lock makes a second copy of this task return `busy`;
    with the workspace's or the platform's delivery slots all taken, it returns `deferred`)."""
    with tenant_bound_by_id(tenant_id):
        return delivery.sink_deliver(tenant_id=tenant_id, sink_id=sink_id).status
