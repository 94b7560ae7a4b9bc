"""The end of a deletion's grace period is judged by the database's clock, before anything of the
workspace is deleted: `audit_chain_purge` judges it by that clock after the Redis keys and stored
files are gone, which no rollback brings back. A host whose clock runs ahead of the database's
gets a refusal that leaves the workspace whole (its clock moved as
tests/audit/test_checkpoint_signing.py moves it)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from foundry.errors import ServiceError

OPERATOR = "operator:1"


@pytest.fixture
def archive(fresh_tenant):
    name = default_storage.save(f"exports/{fresh_tenant.schema_name}/kept.tar", ContentFile(b"archive"))
    yield name
    if default_storage.exists(name):
        default_storage.delete(name)


def test_a_purge_on_a_host_ahead_of_the_database_is_refused_and_deletes_nothing(fresh_tenant, db, archive, monkeypatch):
    with schema_context(fresh_tenant.schema_name):
        cache.set("skew-probe", "the workspace's data", 600)
    host_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: host_now() + timedelta(seconds=30))
    tenant = tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)

    with pytest.raises(ServiceError) as refused:
        tenant_purge(tenant=tenant, actor=OPERATOR)

    assert refused.value.code == "grace_period" and refused.value.status == 409
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.DELETING
    assert default_storage.exists(archive), "a purge that did not happen deleted the workspace's files"
    with schema_context(tenant.schema_name):
        assert cache.get("skew-probe") == "the workspace's data", "… and its Redis keys"
