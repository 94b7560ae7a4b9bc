"""A purge whose Redis step fails is rolled back (apps/lifecycle/deletion.py `_redis_purge`), as
docs/lifecycle.md says. It used to log the failure and commit: the slug — and the schema name made
of it — went free while the purged workspace's cache entries were still in Redis under that name,
for a new workspace of the slug to read.

Redis fails only for the purge: its client list is pointed at a closed port; the real Redis keeps
running for everything else."""

import pytest
import redis
from django.core.cache import cache
from django_tenants.utils import schema_context

from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.lifecycle import deletion
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from foundry.errors import ServiceError
from tests.conftest import free_port

OPERATOR = "operator:1"


def _tombstones(tenant: Tenant) -> int:
    with rls_scope(PLATFORM):
        return AuditEvent.objects.filter(tenant_id=PLATFORM, action="tenant.purged", target_id=str(tenant.pk)).count()


def test_a_purge_whose_redis_cleanup_fails_is_rolled_back_and_done_by_the_next_pass(fresh_tenant, db, monkeypatch):
    with schema_context(fresh_tenant.schema_name):
        cache.set("purge-probe", "the purged workspace's data", 600)
    tenant = tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    monkeypatch.setattr(deletion, "redis_clients", lambda: [dead])

    with pytest.raises(ServiceError) as refused:
        tenant_purge(tenant=tenant, actor=OPERATOR)

    assert (refused.value.code, refused.value.status) == ("redis_unavailable", 503)
    assert Tenant.objects.filter(pk=tenant.pk, status=Tenant.Status.DELETING).exists()
    assert _tombstones(tenant) == 0
    with schema_context(tenant.schema_name):
        assert cache.get("purge-probe") == "the purged workspace's data"

    monkeypatch.undo()  # Redis answers again: the next pass purges, keys and all
    purged = tenant_purge(tenant=Tenant.objects.get(pk=tenant.pk), actor=OPERATOR)

    assert purged.redis_keys >= 1 and _tombstones(tenant) == 1
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    with schema_context(tenant.schema_name):
        assert cache.get("purge-probe") is None
