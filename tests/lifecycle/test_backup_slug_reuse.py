"""A workspace's backups are named and rotated by its slug and its id (apps/lifecycle/backup.py
`tenant_scope`). By slug only, a new workspace given a purged one's slug rotated the purged one's
backups away — docs/operations/disaster-recovery.md's way back from a purge by mistake — and kept
fewer of its own than `--keep` says. Found by a review.

pg_dump sees committed rows only: the workspaces here are committed (no `db` fixture).
"""

import uuid

import pytest

from apps.lifecycle.backup import backup_list, backup_open, backup_run, tenant_scope
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.tenants.services import tenant_provision
from tests.conftest import PASSWORD

OPERATOR = "operator:1"


@pytest.fixture
def unblocked(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


def _provision(slug: str):
    return tenant_provision(
        slug=slug, name=f"Rotated {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
    ).tenant


def test_a_new_workspace_under_a_purged_slug_does_not_rotate_away_the_purged_workspaces_backups(unblocked, tmp_path):
    """The purged workspace's two backups survive the new one's backup with keep=2."""
    slug = f"r{uuid.uuid4().hex[:10]}"
    old = _provision(slug)
    old_files = [backup_run(directory=tmp_path, keep=2, tenant=old)[0].path for _ in range(2)]
    assert [backup_open(p).tenant["id"] for p in old_files] == [old.pk, old.pk]

    tenant_purge(tenant=tenant_deletion_schedule(tenant=old, actor=OPERATOR, grace_days=0), actor=OPERATOR)
    new = _provision(slug)
    try:
        made, deleted = backup_run(directory=tmp_path, keep=2, tenant=new)
        assert backup_open(made.path).tenant["id"] == new.pk != old.pk

        assert deleted == [], f"the new workspace's rotation deleted the purged workspace's backup {deleted}"
        assert all(p.exists() for p in old_files)
        assert [backup_open(p).tenant["id"] for p in backup_list(tmp_path, tenant_scope(new))] == [new.pk]
    finally:
        tenant_purge(tenant=tenant_deletion_schedule(tenant=new, actor=OPERATOR, grace_days=0), actor=OPERATOR)
