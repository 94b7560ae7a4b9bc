"""Files holding a workspace's data, written by the platform to disk: who else may read them."""

import os
import stat
from pathlib import Path

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.lifecycle.backup import backup_create
from apps.lifecycle.exports import export_run
from apps.lifecycle.models import Export
from apps.tokens.services import token_issue


@pytest.fixture
def usual_umask():
    """The umask most services run with (systemd's and Docker's default)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def others_may_read(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))


def test_an_export_archive_is_readable_by_the_platform_s_user_only(acme, settings, tmp_path, usual_umask):
    """A finished export (every row of the workspace) is stored 0600 in directories made 0700
    (FILE_UPLOAD_PERMISSIONS, FILE_UPLOAD_DIRECTORY_PERMISSIONS): no other local account reads it."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with schema_context(acme.schema_name):
        token = token_issue(actor="test", name="t", role="owner", scopes=["read", "admin"]).plaintext
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    export_id = client.post("/api/v1/exports", content_type="application/json").json()["id"]
    with schema_context(acme.schema_name):
        assert export_run(export_id=str(export_id)) == Export.Status.SUCCEEDED
    stored = tmp_path / "media" / "exports" / acme.schema_name / f"{export_id}.zip"
    assert stored.is_file()
    assert not others_may_read(stored), oct(stored.stat().st_mode)
    assert not others_may_read(stored.parent), oct(stored.parent.stat().st_mode)


@pytest.fixture
def unblocked(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


def test_a_backup_is_readable_by_the_platform_s_user_only(unblocked, tmp_path, usual_umask):
    """A backup (a workspace's schema and public rows, or the whole database) is written 0600, in a
    backup directory it makes 0700."""
    from apps.tenants.models import Tenant

    acme = Tenant.objects.get(slug="acme")
    directory = tmp_path / "backups"
    made = backup_create(directory=directory, tenant=acme)
    assert made.path.is_file()
    assert not others_may_read(made.path), oct(made.path.stat().st_mode)
    assert not others_may_read(directory), oct(directory.stat().st_mode)
