"""The Celery application, and the base class every tenant task uses.

A task never inherits a schema from the task before it: the connection is reset to the public
schema before each task, and a tenant task names its tenant in its first argument and runs
inside that tenant's schema, refusing to run for a tenant that is suspended or gone.
"""

import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")

app = Celery("foundry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class TenantUnavailable(Exception):
    """The task's tenant does not exist or is suspended; the task did nothing."""


class TenantTask(Task):
    """Base for tasks that act inside one tenant: `task.delay(schema_name, ...)`."""

    def __call__(self, schema_name: str, *args, **kwargs):
        from django.db import connection

        from apps.tenants.models import Tenant

        connection.set_schema_to_public()
        tenant = Tenant.objects.filter(schema_name=schema_name).first()
        if tenant is None or not tenant.is_active:
            raise TenantUnavailable(f"tenant {schema_name!r} is missing or suspended")
        connection.set_tenant(tenant)
        try:
            return super().__call__(schema_name, *args, **kwargs)
        finally:
            connection.set_schema_to_public()


@task_prerun.connect
@task_postrun.connect
def _reset_schema(**_kwargs) -> None:
    from django.db import connection

    connection.set_schema_to_public()
