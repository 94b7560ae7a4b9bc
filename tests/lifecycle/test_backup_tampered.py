"""Backups altered or damaged in ways the member checksums alone do not catch, and restore
arguments it cannot use: refused naming the file or the name, nothing written, never a traceback
(docs/operations/disaster-recovery.md)."""

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.lifecycle.backup import backup_list, tenant_scope
from apps.tenants.models import Domain, Tenant
from tests.lifecycle.test_backup import (  # noqa: F401 — fixtures
    manage,
    unblocked,
    workspace,
    workspace_create,
    workspace_lose,
)


def tar_written(path: Path, manifest: dict, members: dict[str, bytes]) -> Path:
    """A backup file: its manifest first, then each member, as `manage.py backup` lays one out."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", json.dumps(manifest).encode()), *members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def repack(source: Path, target: Path, *, manifest_edit=None, member_edit=None, without: str = "") -> Path:
    """`source` rewritten: a member's bytes changed (or member `without` gone) and the manifest's
    checksums recomputed, as anyone who can write the file can do (the checksums are not keyed)."""
    with tarfile.open(source) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name != "manifest.json"}
    if member_edit:
        name, data = member_edit(members)
        members[name] = data
        manifest["members"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if without:
        del members[without], manifest["members"][without]
    if manifest_edit:
        manifest_edit(manifest)
    return tar_written(target, manifest, members)


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


@pytest.mark.parametrize("field", ["rows", "member"])
def test_a_manifest_table_entry_missing_a_field_is_refused_by_name_not_with_a_traceback(workspace, tmp_path, field):  # noqa: F811
    """A manifest whose table entry lacks `rows` or `member` is incomplete: refused naming the file."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))

    def drop_field(manifest):
        for item in manifest["tables"]:
            item.pop(field, None)

    bad = repack(made, tmp_path / "bad.tar", manifest_edit=drop_field)
    workspace_lose(workspace)
    done = manage("restore", str(bad))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-1200:]
    assert str(bad) in done.stderr
    assert not Tenant.objects.filter(pk=workspace.pk).exists()
    assert not schema_exists(workspace.schema_name)


def backup_with_domain(tenant: Tenant, tmp_path: Path, domain: str, *, tenant_id: int) -> Path:
    """A backup of `tenant`, edited to hold one more `tenants_domain` row (`domain`, of
    `tenant_id`), its checksums recomputed as anyone who can write the file can."""
    call_command("backup", tenant=tenant.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(tenant))
    with tarfile.open(made) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    (entry,) = [t for t in manifest["tables"] if t["table"] == "tenants_domain"]

    def add_domain(members):
        row = {"id": "987654321", "domain": domain, "tenant_id": str(tenant_id), "is_primary": "f"}
        line = "\t".join(row.get(c, "\\N") for c in entry["columns"]) + "\n"
        return entry["member"], members[entry["member"]] + line.encode()

    def more_rows(manifest):
        for item in manifest["tables"]:
            if item["table"] == "tenants_domain":
                item["rows"] += 1

    return repack(made, tmp_path / "crafted.tar", member_edit=add_domain, manifest_edit=more_rows)


def test_a_workspace_backup_cannot_write_rows_of_another_workspace(unblocked, tmp_path):  # noqa: F811
    """A workspace's restore touches no other workspace (docs: "One workspace lost: restore of its
    backup, the others untouched"): a row naming another (a custom domain for the victim, added
    by whoever can write the file and recompute its unkeyed checksums) is refused, nothing restored."""
    mine, victim = workspace_create(), workspace_create()
    crafted = backup_with_domain(mine, tmp_path, "hijack.example", tenant_id=victim.pk)
    workspace_lose(mine)
    with pytest.raises(CommandError, match="belong to another workspace"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert not Domain.objects.filter(domain="hijack.example").exists()
    assert not Tenant.objects.filter(pk=mine.pk).exists() and not schema_exists(mine.schema_name)


def test_a_backup_without_its_schema_dump_is_refused_by_name_not_with_a_traceback(workspace, tmp_path):  # noqa: F811
    """A workspace's backup whose schema.dump is gone (member and manifest entry both) is incomplete."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    bad = repack(made, tmp_path / "no-schema.tar", without="schema.dump")
    workspace_lose(workspace)
    done = manage("restore", str(bad))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-1200:]
    assert str(bad) in done.stderr
    assert not Tenant.objects.filter(pk=workspace.pk).exists()


def database_backup(path, dump: bytes = b"PGDMP not really") -> str:
    """A well-formed whole-database backup file (its dump is never reached here)."""
    manifest = {
        "format": "foundry-backup",
        "version": 1,
        "scope": "database",
        "created_at": "2026-12-01T00:00:00+00:00",
        "database": "foundry",
        "server_version": 150000,
        "members": {"database.dump": {"size": len(dump), "sha256": hashlib.sha256(dump).hexdigest()}},
    }
    return str(tar_written(path, manifest, {"database.dump": dump}))


@pytest.mark.parametrize("name", ['bad"name', 'x" WITH OWNER "postgres'])
def test_a_database_name_with_a_double_quote_is_refused_not_a_traceback(unblocked, tmp_path, name):  # noqa: F811
    """`restore FILE --database 'bad"name' --create` is refused by name: never spliced into SQL
    (Django's quote_name doubles no quote: 'x" WITH OWNER "postgres' was read as a clause)."""
    backup = database_backup(tmp_path / "foundry-database-20261201T000000.000Z.tar")
    done = manage("restore", backup, "--database", name, "--create")
    try:
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr[-800:]
        assert "CommandError" in done.stderr
    finally:
        with psycopg.connect(os.environ["FOUNDRY_TEST_PG_SUPERUSER"], autocommit=True) as conn:
            for candidate in (name, name.split('"')[0]):
                conn.execute(
                    psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(candidate))
                )


def test_a_workspace_backup_edited_to_claim_a_platform_host_is_not_restored_with_it(unblocked, tmp_path):  # noqa: F811
    """An import leaves behind every custom domain under the platform's base domain (`www.<base>`,
    `login.<base>`, the `<slug>.<base>` of a workspace not yet created: docs/export.md,
    `_domain_attachable`); a restore refuses a backup edited to give the workspace one, and
    restores nothing (backup.py `_domain_rows_check`). It loaded every `tenants_domain` row as
    written (found by a review)."""
    mine = workspace_create()
    host = f"www.{settings.FOUNDRY_BASE_DOMAIN}"
    crafted = backup_with_domain(mine, tmp_path, host, tenant_id=mine.pk)
    workspace_lose(mine)
    with pytest.raises(CommandError, match="not the workspace's to have"):
        call_command("restore", str(crafted), stdout=io.StringIO())
    assert not Domain.objects.filter(domain=host).exists()
    assert not Tenant.objects.filter(pk=mine.pk).exists() and not schema_exists(mine.schema_name)
