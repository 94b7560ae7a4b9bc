from django.db.models import QuerySet

from apps.tenants.models import Tenant


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name="public").prefetch_related("domains")


def tenant_get(*, slug: str) -> Tenant:
    """Raises Tenant.DoesNotExist."""
    return tenant_list().get(slug=slug)
