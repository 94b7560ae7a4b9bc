"""No task of the platform leaves a result in the broker's Redis: results are read by no
production code (settings.py), and each is kept a day. `tenants.refresh_stats` — queued for every
active workspace every 5 minutes — `tenants.refresh_all_stats` and `tokens.expire_idempotency_keys`
kept theirs: 288 keys a workspace a day that nobody read, in the Redis the queues live in (found by
the Celery review)."""

import time

from apps.tenants.models import Tenant
from apps.tenants.tasks import tenant_refresh_stats
from foundry.celery import app


def test_a_workspace_stats_refresh_through_a_real_worker_leaves_no_result(
    celery_worker_process, fresh_tenant, django_db_blocker
):
    with django_db_blocker.unblock():  # the worker reads and writes committed rows
        Tenant.objects.filter(pk=fresh_tenant.pk).update(member_count=0)
        sent = tenant_refresh_stats.delay(fresh_tenant.schema_name)
        deadline = time.monotonic() + 30
        while Tenant.objects.get(pk=fresh_tenant.pk).member_count < 1:
            assert time.monotonic() < deadline, "the worker never ran the task"
            time.sleep(0.05)
    with app.connection_for_write() as conn:
        assert not conn.default_channel.client.exists(f"celery-task-meta-{sent.id}")


def test_every_task_of_the_platform_ignores_its_result():
    app.loader.import_default_modules()
    platform = [(name, task) for name, task in app.tasks.items() if task.__module__.startswith(("apps.", "foundry."))]
    kept = sorted(name for name, task in platform if not task.ignore_result)
    assert len(platform) > 10  # the platform's own tasks were found
    assert kept == [], f"tasks storing results nobody reads: {kept}"
