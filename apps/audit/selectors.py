from apps.audit.chain import GENESIS
from apps.audit.models import AuditActor, AuditChainBase, AuditEvent
from apps.audit.scope import chain_of_connection, rls_scope


def audit_recent(*, tenant_id: int | None = None, limit: int = 10) -> list[AuditEvent]:
    """The chain's latest events, newest first, each with `actor_label` (name or email unless erased)."""
    tenant_id = chain_of_connection() if tenant_id is None else tenant_id
    with rls_scope(tenant_id):
        events = list(AuditEvent.objects.filter(tenant_id=tenant_id).order_by("-seq")[:limit])
        labels = audit_actor_labels(tenant_id, {event.actor_id for event in events})
    for event in events:
        event.actor_label = labels.get(event.actor_id, event.actor_id)
    return events


def audit_actor_labels(tenant_id: int, actor_ids: set[str]) -> dict[str, str]:
    """actor id → how people are shown it; call inside `rls_scope(tenant_id)`."""
    rows = AuditActor.objects.filter(tenant_id=tenant_id, actor_id__in=actor_ids, erased_at__isnull=True)
    return {row.actor_id: row.email or row.display_name or row.actor_id for row in rows}


def audit_chain_base(tenant_id: int) -> AuditChainBase:
    """Where chain `tenant_id` starts and under which id it is hashed (models.AuditChainBase);
    an unsaved default — #1 after genesis, its own id — for a chain that never moved. Call inside
    `rls_scope(tenant_id)`."""
    base = AuditChainBase.objects.filter(tenant_id=tenant_id).first()
    return base or AuditChainBase(tenant_id=tenant_id, hash_tenant_id=tenant_id, first_seq=1, first_prev_hash=GENESIS)
