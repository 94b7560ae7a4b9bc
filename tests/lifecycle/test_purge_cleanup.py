"""What a purge removes outside the database (apps/lifecycle/deletion.py `tenant_purge`): Redis
keys, stored files, the checkpoint database's schema. Each is found by the workspace's names
(schema, hosts), so it is removed before the commit frees them for a new workspace; a failure
there leaves the purge to the next hourly pass, whole."""

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context

from apps.lifecycle import deletion
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.lifecycle.tasks import purge_due
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD

OPERATOR = "operator:1"


def _cleanup(paths):
    for path in paths:
        if default_storage.exists(path):
            default_storage.delete(path)


def test_a_workspace_provisioned_under_the_purged_slug_keeps_its_files_and_cache(fresh_tenant, db, monkeypatch):
    """A new workspace provisioned under the purged slug right after the purge's commit keeps
    its export archives (`exports/<schema>/`) and cached entries (`<schema>:<prefix>:*`)."""
    old = fresh_tenant
    slug = old.slug
    new_file = f"exports/{old.schema_name}/new-workspace-export.zip"
    made = {}
    real_invalidate = deletion.route_invalidate

    def invalidate_then_provision(*hosts):  # runs right after the purge's commit
        real_invalidate(*hosts)
        if "new" in made:
            return
        made["new"] = tenant_provision(
            slug=slug, name="New owner of the slug", owner_email=f"owner@{slug}.new", owner_password=PASSWORD
        ).tenant
        default_storage.save(new_file, ContentFile(b"the new workspace's archive"))
        with schema_context(made["new"].schema_name):
            cache.set("new-workspace-entry", "kept", 600)

    monkeypatch.setattr(deletion, "route_invalidate", invalidate_then_provision)
    try:
        tenant_purge(tenant=tenant_deletion_schedule(tenant=old, actor=OPERATOR, grace_days=0), actor=OPERATOR)
        new = made["new"]
        assert Tenant.objects.filter(pk=new.pk, slug=slug).exists()
        assert default_storage.exists(new_file), "the purge of the old workspace deleted the new one's archive"
        with schema_context(new.schema_name):
            assert cache.get("new-workspace-entry") == "kept", "the purge deleted the new workspace's cache"
    finally:
        _cleanup([new_file])


def test_a_purge_whose_file_cleanup_failed_is_finished_by_a_later_pass(fresh_tenant, db, monkeypatch):
    """A storage error while deleting the workspace's export archives (a whole copy of its data)
    fails that pass's purge; the next hourly pass purges it, archives included."""
    tenant = fresh_tenant
    path = f"exports/{tenant.schema_name}/old-export.zip"
    default_storage.save(path, ContentFile(b"a whole copy of the workspace"))
    tenant_deletion_schedule(tenant=tenant, actor=OPERATOR, grace_days=0)
    real_delete = default_storage.delete
    failures = {"left": 1}

    def flaky_delete(name):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("storage briefly unavailable")
        return real_delete(name)

    try:
        monkeypatch.setattr(default_storage, "delete", flaky_delete)
        purge_due()  # the hourly pass: the storage error is logged, the pass goes on
        assert failures["left"] == 0
        monkeypatch.undo()
        purge_due()  # the next hourly pass
        assert not default_storage.exists(path), "a purged workspace's archive outlived its purge"
    finally:
        _cleanup([path])
