from celery import shared_task

from apps.audit.models import PLATFORM
from apps.audit.services import audit_checkpoint_sign
from apps.tenants.models import Tenant


@shared_task(name="audit.sign_heads", ignore_result=True)
def audit_sign_heads() -> int:
    """Beat: sign the head of every chain that moved since its last checkpoint."""
    chains = [PLATFORM, *Tenant.objects.values_list("pk", flat=True)]
    return sum(audit_checkpoint_sign(tenant_id) is not None for tenant_id in chains)


# --- SIEM delivery (apps/audit/delivery.py) ----------------------------------------------------


@shared_task(name="audit.deliver_sinks", ignore_result=True)
def audit_deliver_sinks() -> int:
    """Beat: queue a delivery run for every sink with events waiting and no back-off pending."""
    from apps.audit.delivery import sinks_due

    due = sinks_due()
    for tenant_id, sink_id in due:
        audit_deliver_sink.delay(tenant_id, sink_id)
    return len(due)


@shared_task(name="audit.deliver_sink", ignore_result=True)
def audit_deliver_sink(tenant_id: int, sink_id: int) -> str:
    """Deliver one sink's pending events (a lock makes a second copy of this task return `busy`)."""
    from apps.audit.delivery import sink_deliver

    return sink_deliver(tenant_id=tenant_id, sink_id=sink_id).status
