from django.db.models import QuerySet

from apps.audit.models import AuditEvent


def audit_recent(*, limit: int = 10) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.all()[:limit]
