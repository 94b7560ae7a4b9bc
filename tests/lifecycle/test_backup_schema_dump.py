"""A workspace backup whose `schema.dump` was replaced, checksums recomputed (the checksums are
not keyed: docs/operations/disaster-recovery.md says so, and promises that "a workspace's restore
refuses a row that names another workspace, so it never writes outside its own" and "One
workspace lost ... `manage.py restore` of its backup, the others untouched")."""

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.lifecycle.backup import _dump_environment, backup_list, pg_binary, tenant_scope
from tests.lifecycle.test_backup import unblocked, workspace_create, workspace_lose  # noqa: F401 — fixtures
from tests.lifecycle.test_backup_tampered import repack


def _dump_of(schema: str, target: Path) -> bytes:
    """`pg_dump -Fc -n schema`, as the backup writes its schema.dump (any tool may write one)."""
    command = [pg_binary("pg_dump"), "-Fc", "--no-password", "-n", schema, "-f", str(target)]
    subprocess.run(command, env=_dump_environment(), check=True, capture_output=True)
    return target.read_bytes()


def _restored(crafted: Path) -> str:
    """`manage.py restore` of the crafted file: "restored", or why it was refused (as expected)."""
    try:
        call_command("restore", str(crafted), stdout=io.StringIO(), stderr=io.StringIO())
    except Exception as e:  # noqa: BLE001 — a refusal is what is expected; what it left is what is checked
        return f"refused: {e}"
    return "restored"


def _crafted(mine, tmp_path: Path, sql: list[str]) -> Path:
    """mine's real backup with its schema.dump replaced by one holding what `sql` created in mine's
    schema, the manifest's checksum of it recomputed."""
    call_command("backup", tenant=mine.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(mine))
    with connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)
    dump = _dump_of(mine.schema_name, tmp_path / "evil.dump")
    return repack(made, tmp_path / "crafted.tar", member_edit=lambda members: ("schema.dump", dump))


def test_a_tampered_schema_dump_cannot_write_into_another_workspace(unblocked, tmp_path):  # noqa: F811
    """A function in the schema.dump, called by a CHECK constraint while the dump's rows are copied
    in, ran as the application role, which writes every workspace's tables: it made a viewer of
    another workspace its owner. A dump holding anything but what a workspace's holds is refused
    now, before anything of it runs, and the other workspace is untouched."""
    mine, victim = workspace_create(), workspace_create()
    victim_schema = victim.schema_name
    evil = (
        f'CREATE FUNCTION "{mine.schema_name}".ok() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN'
        f" UPDATE \"{victim_schema}\".accounts_user SET role = 'owner' WHERE email = 'viewer@{victim.slug}.test';"
        " RETURN true; END $$"
    )
    check = f'ALTER TABLE "{mine.schema_name}".accounts_user ADD CONSTRAINT c_ok CHECK ("{mine.schema_name}".ok())'
    crafted = _crafted(mine, tmp_path, [evil, check])
    workspace_lose(mine)
    with schema_context(victim_schema):  # adding the constraint above ran it once: undo that
        User.objects.filter(email=f"viewer@{victim.slug}.test").update(role="viewer")
    outcome = _restored(crafted)
    with schema_context(victim_schema):
        role = User.objects.get(email=f"viewer@{victim.slug}.test").role
    assert role == "viewer", f"a workspace's restore ({outcome}) made another workspace's viewer an owner"


@pytest.mark.parametrize("planted_table", [True, False], ids=["with-a-table", "empty"])
def test_a_tampered_schema_dump_cannot_create_objects_outside_its_schema(unblocked, tmp_path, planted_table):  # noqa: F811
    """A schema.dump that also holds another schema (`pg_dump -n <schema> -n other`) created that
    schema and its objects too: it is refused now, also when that schema is empty (one squatting
    the name of a workspace to come)."""
    mine = workspace_create()
    call_command("backup", tenant=mine.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(mine))
    scratch = f"rv_scratch_{mine.slug}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{scratch}"')
        if planted_table:
            cursor.execute(f'CREATE TABLE "{scratch}".review_planted (x int)')
    try:
        command = [pg_binary("pg_dump"), "-Fc", "--no-password", "-n", mine.schema_name, "-n", scratch]
        dump = subprocess.run(
            [*command, "-f", str(tmp_path / "two.dump")], env=_dump_environment(), check=True, capture_output=True
        )
        assert dump.returncode == 0
        data = (tmp_path / "two.dump").read_bytes()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{scratch}" CASCADE')
    crafted = repack(made, tmp_path / "crafted.tar", member_edit=lambda members: ("schema.dump", data))
    workspace_lose(mine)
    outcome = _restored(crafted)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [scratch])
        planted = cursor.fetchone() is not None
        if planted:
            cursor.execute(f'DROP SCHEMA "{scratch}" CASCADE')
    assert not planted, f"a workspace's restore ({outcome}) created schema {scratch}"


def test_a_tampered_tenant_row_cannot_point_the_workspace_at_the_template_schema(unblocked, tmp_path):  # noqa: F811
    """The backup's `public/tenants_tenant.copy` row was checked only for its id: edited to name
    `_foundry_base` (the template every new workspace is cloned from), the restored workspace
    served and wrote the template. A row naming another schema or slug than the manifest's is
    refused now, nothing restored (docs/operations/disaster-recovery.md)."""
    from django.conf import settings

    from apps.tenants.models import Tenant

    mine = workspace_create()
    call_command("backup", tenant=mine.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(mine))
    with tarfile.open(made) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    (entry,) = [t for t in manifest["tables"] if t["table"] == "tenants_tenant"]
    at = entry["columns"].index("schema_name")

    def retarget(members):
        (line,) = members[entry["member"]].decode().splitlines()
        values = line.split("\t")
        values[at] = settings.TENANT_BASE_SCHEMA
        return entry["member"], ("\t".join(values) + "\n").encode()

    crafted = repack(made, tmp_path / "crafted.tar", member_edit=retarget)
    workspace_lose(mine)
    outcome = _restored(crafted)
    schema = Tenant.objects.filter(pk=mine.pk).values_list("schema_name", flat=True).first()
    if schema == settings.TENANT_BASE_SCHEMA:  # undo by hand: Tenant.delete() would drop the template
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM public.tenants_domain WHERE tenant_id = %s", [mine.pk])
            cursor.execute(
                "UPDATE public.tenants_tenant SET schema_name = %s WHERE id = %s", [mine.schema_name, mine.pk]
            )
    assert schema != settings.TENANT_BASE_SCHEMA, f"the restore ({outcome}) made a workspace of the template schema"
