from django.db import models


class AuditEvent(models.Model):
    """One security-relevant action, stored in the schema it concerns.

    A tenant's events live in the tenant's schema; platform events (tenant provisioned,
    suspended, …) live in the public schema. Rows are written only by `audit_record`.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    actor = models.CharField(max_length=255, blank=True)
    target = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor or 'system'}"
