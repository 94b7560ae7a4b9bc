"""A workspace backup whose manifest no longer loads the workspace's own row is refused cleanly."""

import io
import json
import tarfile

from django.core.management import call_command
from django.db import connection

from apps.audit.scope import rls_scope
from apps.lifecycle.backup import backup_list, tenant_scope
from apps.tenants.models import Tenant
from tests.lifecycle.test_backup import (  # noqa: F401 — fixtures
    manage,
    unblocked,
    workspace,
    workspace_create,
    workspace_lose,
)
from tests.lifecycle.test_backup_tampered import repack


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def audit_rows(tenant_id: int) -> int:
    with rls_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.audit_auditevent WHERE tenant_id = %s", [tenant_id])
        return cursor.fetchone()[0]


def test_a_backup_edited_to_skip_the_workspace_row_is_refused_and_leaves_nothing(workspace, tmp_path):  # noqa: F811
    """docs/operations/disaster-recovery.md: restore is "safe by default" — a workspace row that is
    not the one the manifest names is refused, and "if the migration or the rows fail, the schema is
    dropped again" (nothing half restored, never a traceback). A manifest edited so that the
    `tenants_tenant` (and `tenants_domain`) entries say 0 rows (the checksums are unkeyed, so the
    file still opens) restores the schema and the audit/usage rows, then dies with
    Tenant.DoesNotExist: an orphan schema and public rows of no workspace are left behind."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    with tarfile.open(made) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert any(t["table"] == "tenants_tenant" and t["rows"] == 1 for t in manifest["tables"])

    def no_workspace_row(manifest):
        for item in manifest["tables"]:
            if item["table"] in ("tenants_tenant", "tenants_domain"):
                item["rows"] = 0

    bad = repack(made, tmp_path / "no-row.tar", manifest_edit=no_workspace_row)
    workspace_lose(workspace)
    before = audit_rows(workspace.pk)
    done = manage("restore", str(bad))
    try:
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr[-1500:]
        assert str(bad) in done.stderr, done.stderr[-1500:]
        assert not Tenant.objects.filter(pk=workspace.pk).exists()
        assert not schema_exists(workspace.schema_name), "the restored schema was left behind with no workspace"
        assert audit_rows(workspace.pk) == before, "public rows of no workspace were committed"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{workspace.schema_name}" CASCADE')
