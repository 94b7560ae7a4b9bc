"""The one way to record an audit event. The audit issue replaces the storage behind it with
the append-only, hash-chained store; callers do not change."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from apps.audit.models import AuditEvent


def _describe(obj: Any) -> str:
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, models.Model):
        return f"{obj._meta.label_lower}:{obj.pk} {obj}"
    return str(obj)


def audit_record(
    *,
    action: str,
    actor: Any = None,
    target: Any = None,
    data: dict | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append an event to the audit log of the schema the connection is on."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    ip_address = request.META.get("REMOTE_ADDR") if request is not None else None
    return AuditEvent.objects.create(
        action=action,
        actor=_describe(actor)[:255],
        target=_describe(target)[:255],
        ip_address=ip_address or None,
        data=data or {},
    )
