import time

import pytest
from django_tenants.utils import schema_context

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_suspend
from apps.tenants.tasks import tenant_refresh_stats
from foundry.celery import TenantUnavailable, app


def test_tasks_of_different_tenants_back_to_back_in_one_worker_each_see_their_own_schema(
    celery_worker_process, django_db_blocker
):
    """One worker process runs acme's task, then globex's, then acme's again: no schema leaks. Each
    counts its workspace's members (acme 5, globex 1) into that workspace's row; the tasks keep no
    result, so the rows say what each saw."""
    both = ["acme", "globex"]
    with django_db_blocker.unblock():  # the worker reads and writes committed rows
        Tenant.objects.filter(schema_name__in=both).update(member_count=0)
        for schema in ("acme", "globex", "acme", "globex"):
            tenant_refresh_stats.delay(schema)
        deadline = time.monotonic() + 30
        while Tenant.objects.filter(schema_name__in=both, member_count=0).exists():
            assert time.monotonic() < deadline, "the worker never ran the tasks"
            time.sleep(0.05)
        time.sleep(1)  # the second two, a few milliseconds behind
        counts = dict(Tenant.objects.filter(schema_name__in=both).values_list("schema_name", "member_count"))
    assert counts == {"acme": 5, "globex": 1}


def test_a_task_for_a_tenant_that_does_not_exist_fails_in_the_worker(celery_worker_process):
    result = tenant_refresh_stats.delay("nope")
    with pytest.raises(TenantUnavailable):  # its failure is kept, though its result would not be
        app.AsyncResult(result.id).get(timeout=30)


def test_a_task_for_a_suspended_tenant_does_nothing(acme):
    tenant_suspend(tenant=acme)
    Tenant.objects.filter(pk=acme.pk).update(member_count=0)
    with pytest.raises(TenantUnavailable):
        tenant_refresh_stats.apply(args=["acme"]).get()
    assert Tenant.objects.get(pk=acme.pk).member_count == 0


def test_a_task_runs_in_its_tenant_even_when_called_from_another_schema(acme, globex):
    with schema_context("globex"):
        assert tenant_refresh_stats.apply(args=["acme"]).get() == {"schema": "acme", "member_count": 5}
