"""The roll-up's day marks name a workspace's id: none is written for a workspace purged, even by
a task queued before the purge and delivered after it (docs/lifecycle.md: after a purge, no key
in any Redis database names its id)."""

from datetime import timedelta

from django.utils import timezone
from django_redis import get_redis_connection

from apps.billing.rollups import rollup_behind
from apps.billing.tasks import usage_rollup_tenant
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge

OPERATOR = "operator:1"


def purged(tenant) -> int:
    tenant_purge(tenant=tenant_deletion_schedule(tenant=tenant, actor=OPERATOR, grace_days=0), actor=OPERATOR)
    return tenant.pk


def marks(tenant_id: int) -> list[str]:
    client = get_redis_connection("default")
    return sorted(key.decode() for key in client.scan_iter(match=f"foundry:billing:rolled:{tenant_id}:*"))


def test_a_roll_up_delivered_after_the_purge_marks_nothing(fresh_tenant, db):
    tenant_id = purged(fresh_tenant)
    day = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert usage_rollup_tenant.apply(args=[tenant_id, day]).get() == 0
    assert marks(tenant_id) == []


def test_the_days_behind_of_a_workspace_purged_since_it_was_listed_are_not_marked(fresh_tenant, db):
    tenant_id = purged(fresh_tenant)
    assert rollup_behind(tenant_id) == []
    assert marks(tenant_id) == []


def test_a_roll_up_marks_its_day(fresh_tenant, db):
    day = (timezone.now() - timedelta(days=1)).date()
    usage_rollup_tenant.apply(args=[fresh_tenant.pk, day.isoformat()]).get()
    assert marks(fresh_tenant.pk) == [f"foundry:billing:rolled:{fresh_tenant.pk}:{day.isoformat()}"]
    get_redis_connection("default").delete(*marks(fresh_tenant.pk))
