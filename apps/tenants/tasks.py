from celery import shared_task
from django.db import connection

from apps.accounts.services import member_count
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list
from foundry.celery import TenantTask


@shared_task(base=TenantTask, name="tenants.refresh_stats", ignore_result=True)
def tenant_refresh_stats(schema_name: str) -> dict:
    """Copy the tenant's member count to its public row, for the operator console."""
    count = member_count()
    Tenant.objects.filter(schema_name=schema_name).update(member_count=count)
    return {"schema": connection.schema_name, "member_count": count}


@shared_task(name="tenants.refresh_all_stats", ignore_result=True)
def tenant_refresh_all_stats() -> int:
    schemas = list(tenant_list().filter(status=Tenant.Status.ACTIVE).values_list("schema_name", flat=True))
    for schema_name in schemas:
        tenant_refresh_stats.delay(schema_name)
    return len(schemas)
