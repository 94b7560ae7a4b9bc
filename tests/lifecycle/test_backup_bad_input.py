"""Bad input to backup and restore (apps/lifecycle/backup.py) is refused by name, never with a
traceback: a target directory that is a file, a manifest of another shape, a database that takes no
connections, public rows that do not load."""

import io
import json
import tarfile

from django.core.management import call_command

from apps.lifecycle.backup import backup_list, tenant_scope
from tests.lifecycle.test_backup import (  # noqa: F401 — fixtures
    backup_role,
    backup_role_url,
    manage,
    unblocked,
    workspace,
    workspace_lose,
)
from tests.lifecycle.test_backup_tampered import repack


def test_backup_into_a_dir_that_is_a_file_is_refused_without_a_traceback(unblocked, tmp_path):  # noqa: F811
    """`backup --dir PATH` where PATH is a file is refused naming it, not a traceback."""
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    done = manage("backup", "--tenant", workspace_slug(), "--dir", str(target))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert str(target) in done.stderr


def workspace_slug() -> str:
    from apps.tenants.models import Tenant

    return Tenant.objects.exclude(schema_name="public").order_by("pk").first().slug


def test_a_manifest_whose_member_entry_is_not_an_object_is_refused_without_a_traceback(unblocked, tmp_path):  # noqa: F811
    """A manifest whose member entry is no object with a checksum and a size is refused by name."""
    dump = tmp_path / "database.dump"
    dump.write_bytes(b"PGDMP")
    bad = tmp_path / "foreign.tar"
    manifest = json.dumps(
        {"format": "foundry-backup", "version": 1, "scope": "database", "members": {"database.dump": "0" * 64}}
    ).encode()
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        tar.add(dump, arcname="database.dump")
    done = manage("restore", str(bad), "--database", "test_rv_never", "--create")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
    assert str(bad) in done.stderr


def test_restore_into_a_database_it_cannot_connect_to_is_refused_without_a_traceback(unblocked, backup_role, tmp_path):  # noqa: F811
    """A target database that takes no connections (template0, no CONNECT) is refused by name."""
    call_command("backup", dir=tmp_path, keep=0, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, "database")
    done = manage("restore", str(made), "--database", "template0")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-1200:]


def test_public_rows_that_do_not_load_are_refused_naming_the_file_not_with_a_traceback(workspace, tmp_path):  # noqa: F811
    """Public rows that do not load (a value another version's column held) are refused naming the
    file, and the schema is dropped again."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))

    def columns_swapped(manifest):
        for item in manifest["tables"]:
            if item["table"] == "tenants_domain":
                cols = item["columns"]
                item["columns"] = [cols[1], cols[0], *cols[2:]]  # id <-> domain

    altered = repack(made, tmp_path / "other-version.tar", manifest_edit=columns_swapped)
    workspace_lose(workspace)
    done = manage("restore", str(altered))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-800:]
    assert str(altered) in done.stderr
