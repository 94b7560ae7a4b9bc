"""Backups and restores with the real pg_dump/pg_restore (apps/lifecycle/backup.py).

pg_dump sees committed rows only, so these tests work on committed workspaces of their own (no
`db` fixture, whose transaction is rolled back) and drop the scratch databases they create.
The whole-database dump runs as a role of its own that bypasses Row-Level Security (created
here with the superuser bin/dev test provides), as FOUNDRY_BACKUP_DATABASE_URL says it must.
"""

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import ProgrammingError, connection, migrations
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.audit.models import PLATFORM
from apps.audit.scope import rls_scope
from apps.billing.rls import usage_scope
from apps.lifecycle.backup import (
    _connect,
    backup_list,
    backup_open,
    database_is_empty,
    tenant_public_tables,
    tenant_scope,
)
from apps.lifecycle.erasing import erasing
from apps.lifecycle.inventory import schema_tables
from apps.runs.services import run_create
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_provision
from apps.tokens.services import token_issue
from foundry.celery import app
from foundry.db.roles import NO_DELETE_TABLES, app_role, as_owner, owner_role
from tests.conftest import (
    PASSWORD,
    ROOT,
    audit_events,
    free_port,
    server_env,
    server_process,
    tenant_user,
    test_database_url,
)
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy


@pytest.fixture(scope="session")
def backup_role_url(django_db_setup) -> str:
    """A login role that bypasses Row-Level Security and reads every table (pg_read_all_data)."""
    superuser = os.environ.get("FOUNDRY_TEST_PG_SUPERUSER")
    assert superuser, "FOUNDRY_TEST_PG_SUPERUSER is not set (bin/dev test sets it)"
    name, password = f"foundry_backup_{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' BYPASSRLS IN ROLE pg_read_all_data")
    db = connection.settings_dict
    yield f"postgres://{name}:{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f"DROP ROLE {name}")


@pytest.fixture
def backup_role(settings, backup_role_url) -> str:
    settings.FOUNDRY_BACKUP_DATABASE_URL = backup_role_url
    return backup_role_url


@pytest.fixture
def unblocked(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        yield


def workspace_create() -> Tenant:
    """A committed workspace with two members, a finished run (steps, usage) and an API token."""
    slug = f"k{uuid.uuid4().hex[:10]}"
    tenant = tenant_provision(
        slug=slug, name=f"Kept {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
    ).tenant
    agent = deploy(tenant, FINANCE, TRIAGE)
    with schema_context(tenant.schema_name):
        User.objects.create_user(f"viewer@{slug}.test", PASSWORD, role=Role.VIEWER)
        run = run_create(agent=agent, input="Triage invoice INV-1001.", created_by="test")
        assert advance(run, tenant.schema_name).status == "succeeded"
        tenant.token = token_issue(actor="test", name="backup", role="admin", scopes=["read", "admin"]).plaintext
    return tenant


@pytest.fixture
def workspace(unblocked) -> Tenant:
    return workspace_create()


@pytest.fixture
def scratch_databases(unblocked):
    """Names of databases the test may create; dropped afterwards."""
    names: list[str] = []
    yield names
    with as_owner(), connection.cursor() as cursor:  # the restores made them as the owner role
        for name in names:
            _dropped(cursor, name)


def _dropped(cursor, name: str) -> None:
    """DROP ... WITH (FORCE), which ends only sessions of roles the owner is a member of: a
    restore's pg_restore (the backup role) may still be leaving, on a busy machine, for a moment."""
    for attempt in range(50):
        try:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except ProgrammingError:
            if attempt == 49:
                raise
            time.sleep(0.1)


def scratch_name(names: list[str]) -> str:
    names.append(f"{connection.settings_dict['NAME']}_restore_{uuid.uuid4().hex[:8]}")
    return names[-1]


def database_url(name: str) -> str:
    return test_database_url().rsplit("/", 1)[0] + f"/{name}"


def database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def api_get(port: int, tenant: Tenant, path: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": f"{tenant.slug}.localhost", "Authorization": f"Bearer {tenant.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def public_rows(tenant_id: int) -> dict[str, list[tuple]]:
    """Every public row of the workspace, by table, as stored."""
    rows = {}
    with usage_scope(tenant_id), rls_scope(tenant_id), connection.cursor() as cursor:
        for table, key in tenant_public_tables():
            if table.name == "audit_auditchain":
                continue  # a cache of the chain's head (rebuilt from the last event), not data
            cursor.execute(f"SELECT * FROM {table.qualified} WHERE {key} = %s ORDER BY 1", [tenant_id])
            rows[table.name] = cursor.fetchall()
    return rows


def schema_rows(schema: str) -> dict[str, list[tuple]]:
    rows = {}
    with connection.cursor() as cursor:
        for table in schema_tables(schema):
            cursor.execute(f"SELECT * FROM {table.qualified} ORDER BY 1")
            rows[table.name] = cursor.fetchall()
    return rows


def workspace_lose(tenant: Tenant) -> None:
    """An accident: the schema dropped and every public row of the workspace deleted (the audit
    trail's by its owner: the app role may not delete from it)."""
    trail = set(NO_DELETE_TABLES) if owner_role() else set()
    with erasing(), usage_scope(tenant.pk), rls_scope(tenant.pk), connection.cursor() as cursor:
        for table, key in reversed(tenant_public_tables()):
            if table.name not in trail:
                cursor.execute(f"DELETE FROM {table.qualified} WHERE {key} = %s", [tenant.pk])
        cursor.execute(f'DROP SCHEMA "{tenant.schema_name}" CASCADE')
    if trail:
        db = connection.settings_dict
        owner = {"user": owner_role(), "password": settings.FOUNDRY_DB_OWNER_PASSWORD}
        with psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], **owner) as conn:
            conn.execute(
                "SELECT set_config('foundry.erasing', 'on', true), set_config('foundry.tenant_id', %s, true)",
                [str(tenant.pk)],
            )
            for table in sorted(trail):
                conn.execute(f"DELETE FROM public.{table} WHERE tenant_id = %s", [tenant.pk])


def manage(*args: str, database: str | None = None, **extra: str) -> subprocess.CompletedProcess:
    env = server_env(**({"DATABASE_URL": database_url(database)} if database else {}), **extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_a_database_lost_and_restored_from_its_backup_serves_the_same_data(
    workspace, backup_role, scratch_databases, live_port, tmp_path
):
    out = io.StringIO()
    call_command("backup", dir=tmp_path, keep=0, stdout=out)
    (made,) = backup_list(tmp_path, "database")
    assert str(made) in out.getvalue()
    events = audit_events("public", action="lifecycle.backup.created", data={"file": made.name})
    assert len(events) == 1 and events[0].data["size"] == made.stat().st_size and events[0].data["seconds"] > 0

    # The platform's database: a copy of the live one (the test cannot drop the session's own).
    name = scratch_name(scratch_databases)
    call_command("restore", str(made), database=name, create=True, stdout=io.StringIO())
    # Its backup, by the command as an operator runs it there; then the database is lost.
    nightly = tmp_path / "nightly"
    backed_up = manage("backup", "--dir", str(nightly), database=name, FOUNDRY_BACKUP_DATABASE_URL=backup_role)
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    (latest,) = backup_list(nightly, "database")
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE "{name}"')
    assert not database_exists(name)
    call_command("restore", str(latest), database=name, create=True, stdout=io.StringIO())
    # The restored database's platform chain says which backup it holds since, and who restored it.
    with _connect(name) as restored_db:
        restored_db.execute("SELECT set_config('foundry.tenant_id', '0', false)")
        last = restored_db.execute(
            "SELECT action, actor_id, target_type, target_id, details FROM public.audit_auditevent"
            " WHERE tenant_id = 0 ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    action, actor_id, target_type, target_id, details = last
    assert (action, actor_id, target_type, target_id) == (
        "lifecycle.backup.restored",
        "service:cli:restore",
        "database",
        name,
    )
    assert json.loads(details) == {
        "file": latest.name,
        "dump_sha256": backup_open(latest).manifest["members"]["database.dump"]["sha256"],
        "created_at": backup_open(latest).manifest["created_at"],
    }

    port = free_port()
    env = server_env(DATABASE_URL=database_url(name), FOUNDRY_BIND=f"127.0.0.1:{port}", FOUNDRY_WEB_WORKERS="1")
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    with server_process(command, port=port, env=env, log=ROOT / "test-artifacts" / f"gunicorn-restore-{port}.log"):
        for path in ("/api/v1/runs", "/api/v1/members"):
            original, restored = api_get(live_port, workspace, path), api_get(port, workspace, path)
            assert restored == original
        (run,) = api_get(port, workspace, "/api/v1/runs")["runs"]
        assert run["status"] == "succeeded"
        steps = f"/api/v1/runs/{run['id']}/steps"
        assert api_get(port, workspace, steps) == api_get(live_port, workspace, steps)
    # Every chain verifies in the restored database exactly as in the live one — the same verdict,
    # the same first break (other tests of this database break chains on purpose, or sign them
    # with keys of their own) — and the workspace's own chain is intact.
    restored, live = (verdicts(manage("audit_verify", "--json", database=db)) for db in (name, None))
    assert restored == {chain: verdict for chain, verdict in live.items() if chain in restored}
    assert set(restored) == set(live) and restored[workspace.pk] == (True, None)


def verdicts(verified: subprocess.CompletedProcess) -> dict[int, tuple[bool, dict | None]]:
    """chain → (intact, first break) from `audit_verify --json`."""
    results = [json.loads(line) for line in verified.stdout.splitlines() if line.startswith("{")]
    assert results, verified.stdout + verified.stderr
    return {r["chain"]: (r["intact"], r["first_break"]) for r in results}


def test_the_application_role_is_refused_a_whole_database_backup_and_told_why(unblocked, settings, tmp_path):
    settings.FOUNDRY_BACKUP_DATABASE_URL = ""
    with pytest.raises(CommandError, match="FOUNDRY_BACKUP_DATABASE_URL") as refused:
        call_command("backup", dir=tmp_path, stdout=io.StringIO())
    assert str(tmp_path) in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # no file, and no partial one left behind
    (event,) = audit_events("public", action="lifecycle.backup.failed")[-1:]
    assert event.outcome == "failure" and "FOUNDRY_BACKUP_DATABASE_URL" in event.data["error"]


def test_a_lost_workspace_is_restored_from_its_backup_with_every_row_and_a_verifying_chain(workspace, tmp_path):
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    before_public, before_schema = public_rows(workspace.pk), schema_rows(workspace.schema_name)
    assert before_public["billing_usage"] and before_public["audit_auditevent"] and before_public["tenants_domain"]
    assert before_schema["runs_step"] and len(before_schema["accounts_user"]) == 2

    workspace_lose(workspace)
    assert not Tenant.objects.filter(pk=workspace.pk).exists()
    assert all(not rows for rows in public_rows(workspace.pk).values())

    out = io.StringIO()
    call_command("restore", str(made), tenant=workspace.slug, stdout=out)
    assert f"Restored workspace {workspace.slug}" in out.getvalue()
    with rls_scope(PLATFORM):  # recorded as the operator's command, not a background service
        from apps.audit.models import AuditEvent

        restored = (
            AuditEvent.objects.filter(tenant_id=PLATFORM, action="lifecycle.backup.restored").order_by("seq").last()
        )
    assert (restored.target_id, restored.actor_id) == (str(workspace.pk), "service:cli:restore")
    assert public_rows(workspace.pk) == before_public
    assert schema_rows(workspace.schema_name) == before_schema
    verified = manage("audit_verify", "--tenant", workspace.slug)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The restored workspace works: its chain goes on from its last event.
    with schema_context(workspace.schema_name):
        from apps.audit.services import audit_record

        appended = audit_record(action="test.after_restore", actor="test")
    assert appended.seq == len(before_public["audit_auditevent"]) + 1
    assert manage("audit_verify", "--tenant", workspace.slug).returncode == 0


def test_a_workspace_backup_from_before_an_upgrade_is_migrated_and_one_from_a_newer_version_refused(
    workspace, tmp_path
):
    """A backup holds the workspace's schema as its migrations left it: restored after an upgrade
    (here: the latest runs migration not yet applied when it was taken), the schema is migrated
    before anything else is written; one made by a newer version is refused, nothing restored."""
    from apps.runs.models import Run

    call_command(
        "migrate_schemas", "runs", "0009_database_defaults", schema_name=workspace.schema_name, tenant=True,
        interactive=False, verbosity=0,
    )  # fmt: skip
    connection.set_schema_to_public()
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (older,) = backup_list(tmp_path, tenant_scope(workspace))
    workspace_lose(workspace)
    call_command("restore", str(older), tenant=workspace.slug, stdout=io.StringIO())
    with schema_context(workspace.schema_name):
        (run,) = Run.objects.all()  # every column of this version's model, trace_content included
        assert run.status == "succeeded"

    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{workspace.schema_name}".django_migrations (app, name, applied)'
            " VALUES ('runs', '9999_from_the_future', now())"
        )
    newer = tmp_path / "newer"
    call_command("backup", tenant=workspace.slug, dir=newer, stdout=io.StringIO())
    (made,) = backup_list(newer, tenant_scope(workspace))
    workspace_lose(workspace)
    with pytest.raises(CommandError, match=r"made by a newer version .*runs\.9999_from_the_future") as refused:
        call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    assert str(made) in str(refused.value)
    assert not Tenant.objects.filter(pk=workspace.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [workspace.schema_name])
        assert cursor.fetchone() is None


def test_a_workspace_restored_over_an_older_database_leaves_no_id_sequence_behind_its_rows(workspace, tmp_path):
    """Restored after an older whole-database restore, whose sequences are behind the workspace's
    rows: each public table's id sequence is moved past the ids restored (a new workspace, audit
    event or usage row would otherwise collide with them), and never moved back."""
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    tables = ("tenants_tenant", "tenants_domain", "audit_auditevent", "billing_usage")
    workspace_lose(workspace)
    # The older nightly's sequences: at the highest id of the rows it held (a superuser sees all).
    params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    with psycopg.connect(**{**params, "dbname": connection.settings_dict["NAME"]}, autocommit=True) as conn:
        for table in tables:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('public.{table}', 'id'),"
                f" coalesce((SELECT max(id) FROM public.{table}), 1))"
            )
    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    restored = {}
    with usage_scope(workspace.pk), rls_scope(workspace.pk), connection.cursor() as cursor:
        for table in tables:
            key = "id" if table == "tenants_tenant" else "tenant_id"
            cursor.execute(f"SELECT max(id) FROM public.{table} WHERE {key} = %s", [workspace.pk])
            restored[table] = cursor.fetchone()[0]
    assert all(restored.values()), restored
    with as_owner(), connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT last_value FROM public.{table}_id_seq")
            assert cursor.fetchone()[0] >= restored[table], table


def test_restoring_a_workspace_that_exists_is_refused_and_changes_nothing(workspace, tmp_path):
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    before = public_rows(workspace.pk), schema_rows(workspace.schema_name)
    with pytest.raises(CommandError, match="exists already") as refused:
        call_command("restore", str(made), stdout=io.StringIO())
    assert str(made) in str(refused.value)
    assert (public_rows(workspace.pk), schema_rows(workspace.schema_name)) == before
    for other in ("someone-else", ""):  # "": a script's unset variable still asks for a workspace's backup
        with pytest.raises(CommandError, match=f"not a backup of workspace '{other}'"):
            call_command("restore", str(made), tenant=other, stdout=io.StringIO())
    with pytest.raises(CommandError, match="no --database"):
        call_command("restore", str(made), database="elsewhere", stdout=io.StringIO())


def test_a_whole_database_backup_is_never_restored_over_a_database_holding_data(
    unblocked, backup_role, scratch_databases, tmp_path
):
    call_command("backup", dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, "database")
    with pytest.raises(CommandError, match="is not empty; restoring over it needs --force") as refused:
        call_command("restore", str(made), stdout=io.StringIO())  # the live database by default
    assert str(made) in str(refused.value)
    name = scratch_name(scratch_databases)
    call_command("restore", str(made), database=name, create=True, stdout=io.StringIO())
    with pytest.raises(CommandError, match="exists already"):
        call_command("restore", str(made), database=name, create=True, stdout=io.StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command("restore", str(made), database=f"{name}_x", stdout=io.StringIO())


def contents(name: str) -> tuple[set[str], set[str]]:
    """(workspace slugs, non-public schemas) of database `name`, as the application role sees them."""
    with psycopg.connect(database_url(name)) as conn:
        slugs = {slug for (slug,) in conn.execute("SELECT slug FROM public.tenants_tenant")}
        schemas = {
            schema
            for (schema,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema')"
                " AND nspname NOT LIKE 'pg\\_%'"
            )
        }
    return slugs, schemas


def test_force_restores_the_backup_over_a_database_that_holds_workspaces(
    unblocked, backup_role, scratch_databases, tmp_path
):
    """The workspaces' schemas go first: pg_restore --clean drops the public functions their
    triggers call, which PostgreSQL refuses while they exist. A workspace the backup does not
    hold is gone with its schema, not left without its public rows."""
    kept = workspace_create()
    call_command("backup", dir=tmp_path / "before", stdout=io.StringIO())
    later = workspace_create()
    call_command("backup", dir=tmp_path / "after", stdout=io.StringIO())
    (before,) = backup_list(tmp_path / "before", "database")
    (after,) = backup_list(tmp_path / "after", "database")

    name = scratch_name(scratch_databases)
    call_command("restore", str(after), database=name, create=True, stdout=io.StringIO())
    slugs, schemas = contents(name)
    assert {kept.slug, later.slug} <= slugs and {kept.schema_name, later.schema_name} <= schemas

    call_command("restore", str(before), database=name, force=True, stdout=io.StringIO())
    slugs, schemas = contents(name)
    assert kept.slug in slugs and kept.schema_name in schemas
    assert later.slug not in slugs and later.schema_name not in schemas
    with psycopg.connect(database_url(name)) as conn:
        members = conn.execute(f'SELECT count(*) FROM "{kept.schema_name}".accounts_user').fetchone()[0]
    assert members == 2


@pytest.mark.skipif(owner_role() is None, reason="one database role: it restores everything in one pass")
def test_an_existing_empty_database_is_restored_whole_or_refused_before_anything_is_restored(
    unblocked, backup_role, scratch_databases, tmp_path
):
    """The owner role restores the public schema, the application role the workspaces' schemas: in
    an existing database the latter gets what --create grants it, and a database where either
    may not is refused before the public pass (which would be committed, the workspaces refused:
    half a platform)."""
    kept = workspace_create()
    call_command("backup", dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, "database")
    granted = scratch_name(scratch_databases)
    with as_owner(), connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{granted}"')  # no grant to the application role
    call_command("restore", str(made), database=granted, stdout=io.StringIO())
    slugs, schemas = contents(granted)
    assert kept.slug in slugs and kept.schema_name in schemas

    foreign = scratch_name(scratch_databases)
    superuser = os.environ["FOUNDRY_TEST_PG_SUPERUSER"]
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{foreign}"')  # the superuser's: the owner role cannot grant on it
    try:
        with pytest.raises(CommandError, match="may not create objects in the public schema") as refused:
            call_command("restore", str(made), database=foreign, stdout=io.StringIO())
        assert str(made) in str(refused.value)
        assert database_is_empty(foreign)
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{foreign}"')


def test_rotation_keeps_the_newest_backups_of_each_scope(unblocked, tmp_path):
    first, second = workspace_create(), workspace_create()
    (tmp_path / "notes.txt").write_text("not a backup")
    for _ in range(3):
        call_command("backup", tenant=first.slug, dir=tmp_path, keep=2, stdout=io.StringIO())
        time.sleep(0.002)  # names have millisecond resolution
    call_command("backup", tenant=second.slug, dir=tmp_path, keep=2, stdout=io.StringIO())
    made = [e.data["file"] for e in audit_events("public", action="lifecycle.backup.created")][-4:]
    kept = backup_list(tmp_path, tenant_scope(first))
    assert [p.name for p in kept] == made[1:3]
    assert [p.name for p in backup_list(tmp_path, tenant_scope(second))] == made[3:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*made[1:], "notes.txt"])
    rotated = audit_events("public", action="lifecycle.backup.created", data={"file": made[2]})
    assert rotated[0].data["deleted"] == [made[0]]


def corrupt(path: Path, how: str, target: Path) -> Path:
    data = path.read_bytes()
    if how == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        target.write_bytes(os.urandom(4096))
    elif how == "flipped byte":
        with tarfile.open(path) as tar:
            member = tar.getmember("schema.dump")
        at = member.offset_data + member.size // 2
        target.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    elif how == "not a backup":
        with tarfile.open(target, "w") as tar:
            tar.add(path, arcname="something.dump")
    return target


@pytest.mark.parametrize("how", ["truncated", "garbage", "flipped byte", "not a backup", "missing"])
def test_a_damaged_file_is_refused_naming_it_and_nothing_is_written(workspace, scratch_databases, tmp_path, how):
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    workspace_lose(workspace)
    damaged = tmp_path / "damaged.tar"
    if how != "missing":
        corrupt(made, how, damaged)
    name = scratch_name(scratch_databases)
    with pytest.raises(CommandError) as refused:
        call_command("restore", str(damaged), stdout=io.StringIO())
    assert str(damaged) in str(refused.value)
    with pytest.raises(CommandError, match=str(damaged)):
        call_command("restore", str(damaged), database=name, create=True, stdout=io.StringIO())
    assert not Tenant.objects.filter(pk=workspace.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [workspace.schema_name])
        assert cursor.fetchone() is None
    assert not database_exists(name)
    call_command("restore", str(made), stdout=io.StringIO())  # the intact file still restores
    assert Tenant.objects.filter(pk=workspace.pk).exists()


def test_a_workspace_backup_holds_none_of_another_workspaces_rows(unblocked, tmp_path):
    mine, other = workspace_create(), workspace_create()
    call_command("backup", tenant=mine.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(mine))
    assert all(public_rows(other.pk)[name] for name in ("billing_usage", "audit_auditevent", "tenants_domain"))
    with tarfile.open(made) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert manifest["tenant"] == {"id": mine.pk, "slug": mine.slug, "schema_name": mine.schema_name}
        for item in manifest["tables"]:
            column = item["columns"].index(item["key"])
            lines = tar.extractfile(item["member"]).read().decode().splitlines()
            assert len(lines) == item["rows"]
            assert {line.split("\t")[column] for line in lines} <= {str(mine.pk)}, item["table"]
        (tmp_path / "schema.dump").write_bytes(tar.extractfile("schema.dump").read())
    listing = subprocess.run([_pg_restore(), "-l", str(tmp_path / "schema.dump")], capture_output=True, check=True)
    listing = listing.stdout.decode()
    assert mine.schema_name in listing and other.schema_name not in listing
    assert " public " not in listing


def _pg_restore() -> str:
    from apps.lifecycle.backup import pg_binary

    return pg_binary("pg_restore")


def test_the_daily_beat_job_writes_a_backup_through_a_real_worker(unblocked, backup_role, tmp_path):
    assert settings.CELERY_BEAT_SCHEDULE["lifecycle-backup"] == {"task": "lifecycle.backup", "schedule": 86400.0}
    from tests.runs.test_worker import worker

    queue = f"backup-{uuid.uuid4().hex[:8]}"
    env = {"FOUNDRY_BACKUP_DIR": str(tmp_path), "FOUNDRY_BACKUP_DATABASE_URL": backup_role, "FOUNDRY_BACKUP_KEEP": "1"}
    older = tmp_path / "foundry-database-20261101T010000.000Z.tar"  # an earlier day's
    older.write_bytes(b"an older nightly backup")
    with worker(queue, **env):
        for _ in range(2):
            before = len(audit_events("public", action="lifecycle.backup.created"))
            app.send_task("lifecycle.backup", queue=queue)
            deadline = time.monotonic() + 60
            while len(audit_events("public", action="lifecycle.backup.created")) == before:
                assert time.monotonic() < deadline, "the backup task did not finish"
                time.sleep(0.2)
    first, second = audit_events("public", action="lifecycle.backup.created")[-2:]
    # The job rotates by day (FOUNDRY_BACKUP_KEEP days): the earlier day's backup goes, the day's
    # two stay — a copy of the job run again that day never rotates away an older day's.
    kept = backup_list(tmp_path, "database")
    assert [path.name for path in kept] == [first.data["file"], second.data["file"]]
    assert first.data["deleted"] == [older.name] and second.data["deleted"] == []
    assert second.data["size"] == kept[-1].stat().st_size and second.actor_id == "service:lifecycle"
    assert second.tenant_id == PLATFORM


# A tenant schema is the app role's: whatever it holds (here a CHECK constraint calling its own
# function, which grants CREATE on public to whoever runs it as the owner) must never run as the
# owner role. A whole-database restore loads the tenants' rows logged in as the app role.
RESTORE_TRAP = """
CREATE FUNCTION acme.trap_check(int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF current_user <> session_user OR current_user <> '{app}' THEN
    EXECUTE 'GRANT CREATE ON SCHEMA public TO {app}';
  END IF;
  RETURN true;
END $$;
CREATE TABLE acme.trap_rows (id int CHECK (acme.trap_check(id)));
INSERT INTO acme.trap_rows VALUES (1);
"""


@pytest.fixture
def restore_trap(unblocked):
    url = test_database_url()
    with psycopg.connect(url, autocommit=True) as conn:  # the app role
        conn.execute(RESTORE_TRAP.format(app=app_role()))
    yield
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE acme.trap_rows; DROP FUNCTION acme.trap_check(int)")


def test_a_whole_database_restore_runs_no_app_role_code_as_the_owner(
    restore_trap, backup_role, scratch_databases, tmp_path
):
    call_command("backup", dir=tmp_path, keep=0, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, "database")
    name = scratch_name(scratch_databases)
    call_command("restore", str(made), database=name, create=True, stdout=io.StringIO())
    with psycopg.connect(database_url(name)) as conn:
        can_create = conn.execute("SELECT has_schema_privilege(current_user, 'public', 'CREATE')").fetchone()[0]
        assert conn.execute("SELECT current_user").fetchone()[0] == app_role()
    assert not can_create, "the restore ran the app role's CHECK function as the owner (it granted CREATE on public)"
    assert connection.settings_dict["USER"] == app_role()


def test_a_backup_while_another_of_its_scope_runs_is_refused_and_writes_nothing(workspace, tmp_path):
    """The beat job's copy delivered again while the first still dumps, or a command beside it:
    refused at once (BackupBusy), no file, no audit event; another scope is not held back."""
    from apps.lifecycle.backup import BackupBusy, backup_run, tenant_scope
    from apps.lifecycle.tasks import backup as backup_task

    events = len(audit_events("public", action="lifecycle.backup.created"))
    held = _lock_holder("database")
    try:
        with pytest.raises(BackupBusy, match="already running"):
            backup_run(directory=tmp_path, keep=3)
        assert backup_task() == "busy"
        with pytest.raises(CommandError, match="already running"):
            call_command("backup", dir=tmp_path, stdout=io.StringIO())
        assert list(tmp_path.iterdir()) == []
        made, _ = backup_run(directory=tmp_path, keep=3, tenant=workspace)  # another scope
        assert made.scope == tenant_scope(workspace)
    finally:
        held.kill()  # as a worker lost mid-dump: its connection, and the lock, go with it
        held.wait()
    assert len(audit_events("public", action="lifecycle.backup.created")) == events + 1
    made, _ = backup_run(directory=tmp_path, keep=3, tenant=workspace)  # and the lock was let go
    assert made.path.exists()


def _lock_holder(scope: str) -> subprocess.Popen:
    """Another process holding the advisory lock of `scope`'s backups, as a backup running
    there does, until it is killed."""
    from apps.lifecycle.backup import backup_lock_name

    script = (
        "import sys, psycopg\n"
        "conn = psycopg.connect(sys.argv[1], autocommit=True)\n"
        "conn.execute('SELECT pg_advisory_lock(hashtextextended(%s, 0))', [sys.argv[2]])\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, test_database_url(), backup_lock_name(scope)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_backup_whose_worker_was_killed_holds_the_next_one_back_not_at_all(workspace, tmp_path):
    """The lock goes with the lost worker's connection: the next backup of that scope runs at once."""
    from apps.lifecycle.backup import BackupBusy, backup_run, tenant_scope

    held = _lock_holder(tenant_scope(workspace))
    with pytest.raises(BackupBusy):
        backup_run(directory=tmp_path, keep=3, tenant=workspace)
    os.kill(held.pid, signal.SIGKILL)
    held.wait()
    for _ in range(50):  # the server notices the closed connection within moments
        try:
            made, _ = backup_run(directory=tmp_path, keep=3, tenant=workspace)
            break
        except BackupBusy:
            time.sleep(0.1)
    else:
        pytest.fail("the killed holder's lock was never let go")
    assert made.path.exists()


def test_a_dump_that_runs_too_long_is_stopped_and_leaves_nothing(workspace, settings, tmp_path):
    settings.FOUNDRY_BACKUP_TIMEOUT_SECONDS = 0.001
    with pytest.raises(CommandError, match=r"did not finish within 0\.001 s"):
        call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    assert list(tmp_path.iterdir()) == []  # no file, and no partial one left behind
    (event,) = audit_events("public", action="lifecycle.backup.failed")[-1:]
    assert "FOUNDRY_BACKUP_TIMEOUT_SECONDS" in event.data["error"]


SQUASH = ("runs", "0009_squashed_0010")
REPLACED = [("runs", "0009_database_defaults"), ("runs", "0010_run_trace_content")]


@pytest.fixture
def squashed_release(monkeypatch):
    """This code as a release that squashed runs 0009 and 0010 (Django's documented transition:
    the squash ships with `replaces`, beside or instead of the originals)."""
    load_disk = MigrationLoader.load_disk

    def with_squash(self):
        load_disk(self)
        squash = type(
            "Migration",
            (migrations.Migration,),
            {"replaces": REPLACED, "dependencies": [("runs", "0008_run_attempt")], "operations": []},
        )(SQUASH[1], SQUASH[0])
        self.disk_migrations[SQUASH] = squash

    monkeypatch.setattr(MigrationLoader, "load_disk", with_squash)


def test_a_backup_taken_before_a_squash_is_not_refused_as_made_by_a_newer_version(
    workspace, tmp_path, squashed_release
):
    """Once a release squashes migrations, Django's loader drops the replaced ones from its graph:
    a backup of the release before (the replaced migrations recorded) is judged against what the
    workspaces here have applied too, as an import is, not refused as made by a newer version."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert SQUASH in loader.graph.nodes and REPLACED[0] in loader.replacements[SQUASH].replaces

    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))
    workspace_lose(workspace)
    call_command("restore", str(made), tenant=workspace.slug, stdout=io.StringIO())
    assert Tenant.objects.filter(pk=workspace.pk).exists()


def test_restoring_a_workspace_whose_secrets_no_configured_key_opens_says_which(workspace, tmp_path, settings):
    """A workspace's provider key is encrypted under the key first in FOUNDRY_ENCRYPTION_KEYS when
    it was set; restored after that key was removed, the restore succeeds and says which secrets
    no configured key decrypts, and what to do — rather than the runs failing later, unexplained."""
    from cryptography.fernet import Fernet

    from apps.providers.services import credential_set

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FOUNDRY_ENCRYPTION_KEYS = [old]
    with schema_context(workspace.schema_name):
        credential_set(actor=tenant_user(workspace, f"owner@{workspace.slug}.test"), provider="openai", api_key="sk-x")
    call_command("backup", tenant=workspace.slug, dir=tmp_path, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, tenant_scope(workspace))

    for keys, warned in (([new, old], ""), ([new], "provider openai")):
        settings.FOUNDRY_ENCRYPTION_KEYS = keys
        workspace_lose(workspace)
        out, err = io.StringIO(), io.StringIO()
        call_command("restore", str(made), tenant=workspace.slug, stdout=out, stderr=err)
        assert f"Restored workspace {workspace.slug}" in out.getvalue()
        if warned:
            assert f"decrypts 1 of its secrets ({warned})" in err.getvalue()
            assert "rotate_encryption_keys" in err.getvalue()
        else:
            assert err.getvalue() == ""


def test_a_database_restore_whose_dump_cannot_be_extracted_leaves_no_database(
    workspace, backup_role, scratch_databases, tmp_path, monkeypatch
):
    """The dump is extracted to a temporary directory for pg_restore; when that fails (a full or
    unwritable one) the restore was an OSError: a traceback, and the database it had just created
    was left behind, empty. Now it is a BackupError, and that database is dropped again."""
    call_command("backup", dir=tmp_path, keep=0, stdout=io.StringIO())
    (made,) = backup_list(tmp_path, "database")
    name = scratch_name(scratch_databases)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    with pytest.raises(CommandError, match="could not be extracted"):
        call_command("restore", str(made), database=name, create=True, stdout=io.StringIO())
    assert not database_exists(name)
