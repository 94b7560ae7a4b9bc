"""Backups with pg_dump and their restore with pg_restore (docs/operations/disaster-recovery.md).

A backup is one tar file, written under a hidden temporary name and renamed once complete, so
a crash never leaves a file that looks like a backup. Its members:
- `manifest.json`: format and version, scope, time, PostgreSQL version, and each member's size
  and SHA-256 (restore checks every one before it writes anything);
- the whole database: `database.dump` (pg_dump -Fc);
- one workspace: `schema.dump` (pg_dump -Fc -n <its schema>) and `public/<table>.copy`, its rows
  of every public table with a `tenant_id` column plus its `tenants_tenant` row (COPY text
  format), all read in one snapshot, which pg_dump shares (`--snapshot`).

Connections are passed to the PostgreSQL tools in their environment (PGPASSWORD …), never on
the command line. Public audit and usage tables are under forced Row-Level Security, which binds
the application's role too: the whole-database dump needs a role that bypasses it
(FOUNDRY_BACKUP_DATABASE_URL); a workspace's rows are read by the application's role inside
that workspace's scopes.
"""

# ruff: noqa: S603, S608 — the tools run are PostgreSQL's, with arguments of ours; names in SQL come
# from the catalog or the checked manifest and are quoted, and the only value is an integer id.

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.audit.history import tenant_public_history
from apps.audit.scope import rls_scope
from apps.billing.rls import usage_scope
from apps.lifecycle.erasure import Reapplied, erasures_reapply
from apps.lifecycle.inventory import Table, public_tenant_tables, schema_tables, stored_columns
from apps.tenants.models import Tenant
from foundry.db import tools
from foundry.db.roles import app_role, as_owner, owner_role
from foundry.db.tools import pg_environment

logger = logging.getLogger(__name__)

FORMAT = "foundry-backup"
HISTORY = "auditlog_logentry"
VERSION = 1
DATABASE = "database"  # the scope of a whole-database backup; a workspace's is "tenant-<slug>-id<id>"
MANIFEST = "manifest.json"
_NAME = re.compile(r"^foundry-(?P<scope>database|tenant-[a-z0-9_-]+)-(?P<at>[0-9]{8}T[0-9]{6}\.[0-9]{3}Z)\.tar\Z")
_CHUNK = 1 << 20
# How a dump extracted to a file without a name is passed to pg_restore (`_extracted`).
_FD = "/dev/fd/"


class BackupError(Exception):
    """A backup or restore refused or failed; the message names the file."""


class BackupBusy(BackupError):
    """Another backup of the same scope is running (a command beside the beat job, a task the
    broker delivered again while its first copy still dumps)."""


@dataclass(frozen=True)
class BackupFile:
    path: Path
    scope: str
    size: int
    seconds: float


@dataclass(frozen=True)
class Backup:
    """A backup file whose every member was checked against its manifest."""

    path: Path
    manifest: dict

    @property
    def scope(self) -> str:
        return self.manifest["scope"]

    @property
    def tenant(self) -> dict | None:
        return self.manifest.get("tenant")


# --- PostgreSQL tools ---------------------------------------------------------------------------
def pg_binary(name: str) -> str:
    try:
        return tools.pg_binary(name)
    except tools.ToolMissing as error:
        raise BackupError(str(error)) from None


def _run(command: list[str], *, env: dict[str, str], what: str) -> None:
    timeout = settings.FOUNDRY_BACKUP_TIMEOUT_SECONDS
    try:  # a hung dump or restore never holds its worker (or a lock) without limit
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False, timeout=timeout, pass_fds=_fds(command)
        )
    except subprocess.TimeoutExpired:
        raise BackupError(
            f"{what}: {Path(command[0]).name} did not finish within {timeout:g} s (FOUNDRY_BACKUP_TIMEOUT_SECONDS)"
        ) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{what}: {Path(command[0]).name} failed: {' '.join(detail[-3:]) or result.returncode}")


def _fds(command: list[str]) -> tuple[int, ...]:
    """The descriptors a command's `/dev/fd/N` arguments name (an `_extracted` dump): inherited."""
    return tuple(int(arg.removeprefix(_FD)) for arg in command if arg.startswith(_FD))


def _dump_environment() -> dict[str, str]:
    return pg_environment(url=settings.FOUNDRY_BACKUP_DATABASE_URL, database=connection.settings_dict["NAME"])


# --- writing a backup ---------------------------------------------------------------------------
def backup_name(scope: str, at: datetime) -> str:
    return f"foundry-{scope}-{at.strftime('%Y%m%dT%H%M%S')}.{at.microsecond // 1000:03d}Z.tar"


def tenant_scope(tenant: Tenant) -> str:
    """A workspace's backups are named, rotated and locked by its slug and its id: a slug freed by
    a purge and taken by a new workspace must not have the new one's rotation delete the purged
    one's backups, the way back after a purge by mistake (docs/operations/disaster-recovery.md)."""
    return f"tenant-{tenant.slug}-id{tenant.pk}"


def backup_create(*, directory: Path, tenant: Tenant | None = None) -> BackupFile:
    """Back up the whole database, or one workspace (its schema and its public rows), into a
    new file in `directory`."""
    if connection.in_atomic_block:
        raise BackupError("a backup runs in transactions of its own, not inside another")
    directory = Path(directory)
    started = time.monotonic()
    at = datetime.now(UTC)
    scope = DATABASE if tenant is None else tenant_scope(tenant)
    final = directory / backup_name(scope, at)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # a backup is for the platform's user only
        work = Path(tempfile.mkdtemp(prefix=_work_prefix(scope), dir=directory))
    except OSError as error:  # a file by that name, no permission, a full disk
        raise BackupError(f"{directory}: cannot write a backup there ({error.strerror or error}).") from None
    try:
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "scope": DATABASE if tenant is None else "tenant",
            "created_at": at.isoformat(),
            "database": connection.settings_dict["NAME"],
            "server_version": connection.pg_version,
        }
        if tenant is None:
            members = [_database_dump(work / "database.dump", final)]
        else:
            manifest["tenant"] = {"id": tenant.pk, "slug": tenant.slug, "schema_name": tenant.schema_name}
            members, manifest["tables"], manifest["history"] = _tenant_dump(tenant, work, final)
        manifest["members"] = {name: {"size": path.stat().st_size, "sha256": _sha256(path)} for name, path in members}
        partial = work / final.name
        _tar_write(partial, manifest, members)
        os.replace(partial, final)
        _fsync_directory(directory)
    except OSError as error:  # a full disk, a file too large: a failed backup, recorded as one
        raise BackupError(f"{final}: cannot write the backup ({error.strerror or error}).") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BackupFile(path=final, scope=scope, size=final.stat().st_size, seconds=time.monotonic() - started)


def _work_prefix(scope: str) -> str:
    """A backup's work directory's name, up to mkdtemp's random end: its scope, then a dot (no
    slug holds one), so one scope's prefix is never another's."""
    return f".partial-{scope}."


def _work_left_over_clear(directory: Path, scope: str) -> None:
    """Remove what backups of `scope` killed mid-dump left (SIGKILL: a hard time limit, a lost
    machine; their `finally` never ran), each as large as a dump. Called holding the scope's lock,
    so no live backup of it owns one; other scopes' are theirs."""
    for left in Path(directory).glob(f"{_work_prefix(scope)}*"):
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)


def _database_dump(target: Path, final: Path) -> tuple[str, Path]:
    env = _dump_environment()
    _refuse_without_bypass(env, final)
    _run([pg_binary("pg_dump"), "-Fc", "--no-password", "-f", str(target)], env=env, what=str(final))
    return "database.dump", target


def _refuse_without_bypass(env: dict[str, str], final: Path) -> None:
    """pg_dump refuses tables whose rows Row-Level Security hides; say why before it starts."""
    import psycopg

    params = {"host": env["PGHOST"], "port": env["PGPORT"], "user": env.get("PGUSER"), "dbname": env["PGDATABASE"]}
    with psycopg.connect(password=env.get("PGPASSWORD"), connect_timeout=10, **params) as conn:
        bypass = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()[
            0
        ]
    if not bypass:
        raise BackupError(
            f"{final}: the role {env.get('PGUSER')!r} cannot read every tenant's audit and usage rows (forced "
            "Row-Level Security); set FOUNDRY_BACKUP_DATABASE_URL to a role with BYPASSRLS "
            "(docs/operations/disaster-recovery.md)."
        )


def _tenant_dump(tenant: Tenant, work: Path, final: Path) -> tuple[list[tuple[str, Path]], list[dict], dict]:
    """The workspace's schema, its public rows and their model history, read in one snapshot."""
    members = []
    tables = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
        schema_file = work / "schema.dump"
        command = [pg_binary("pg_dump"), "-Fc", "--no-password", "--snapshot", snapshot]
        command += ["-n", tenant.schema_name, "-f", str(schema_file)]
        _run(command, env=_dump_environment(), what=str(final))
        members.append(("schema.dump", schema_file))
        with usage_scope(tenant.pk), rls_scope(tenant.pk), connection.cursor() as cursor:
            for table, key in tenant_public_tables():
                columns = stored_columns(table)
                member = f"public/{table.name}.copy"
                path = work / f"{table.name}.copy"
                rows = 0
                select = f"SELECT {', '.join(_quoted(columns))} FROM {table.qualified} WHERE {key} = {int(tenant.pk)}"
                with path.open("wb") as file, cursor.copy(f"COPY ({select}) TO STDOUT") as copy:
                    for data in copy:
                        rows += bytes(data).count(b"\n")
                        file.write(data)
                members.append((member, path))
                tables.append({"table": table.name, "key": key, "columns": columns, "rows": rows, "member": member})
            history = _history_dump(cursor, tenant, work / "history.copy")
            members.append((history["member"], work / "history.copy"))
    return members, tables, history


HISTORY_MEMBER = "public/auditlog_logentry.copy"


def history_columns() -> list[str]:
    """The model history's columns a backup carries: all but its id (a restore numbers the entries
    anew) and its content type's id (another database's ids differ: named by app and model)."""
    return [c for c in stored_columns(Table("public", HISTORY)) if c not in ("id", "content_type_id")]


def _history_dump(cursor, tenant: Tenant, path: Path) -> dict:
    """The public model history of the workspace's own rows (its tenant and domain rows, budgets,
    audit sinks), which names no tenant: a purge deletes it, so a backup keeps it. Each entry's
    content type as `app_label`, `model`, then its columns, oldest first."""
    columns = history_columns()
    where, params = tenant_public_history(tenant.pk)
    select = (
        f"SELECT c.app_label, c.model, {', '.join('l.' + c for c in _quoted(columns))}"
        f" FROM public.{HISTORY} l JOIN public.django_content_type c ON c.id = l.content_type_id"
        f" WHERE {where} ORDER BY l.id"
    )
    rows = 0
    # COPY takes no parameters: psycopg binds these (ints) into the statement client-side, on its
    # own cursor (Django's debug wrapper, with DEBUG on as under `bin/dev up`, passes none on).
    with path.open("wb") as file, cursor.cursor.copy(f"COPY ({select}) TO STDOUT", params) as copy:
        for data in copy:
            rows += bytes(data).count(b"\n")
            file.write(data)
    return {"columns": columns, "rows": rows, "member": HISTORY_MEMBER}


def tenant_public_tables() -> list[tuple[Table, str]]:
    """The public tables holding a workspace's rows, parents first, with the column naming it."""
    keyed = {table.name: "tenant_id" for table in public_tenant_tables()}
    keyed["tenants_tenant"] = "id"
    ordered = [table for table in schema_tables("public", bookkeeping=True) if table.name in keyed]
    return [(table, keyed[table.name]) for table in ordered]


def _quoted(names: list[str]) -> list[str]:
    return [connection.ops.quote_name(name) for name in names]


def _tar_write(path: Path, manifest: dict, members: list[tuple[str, Path]]) -> None:
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:  # owner only
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(body))
            for name, member in members:
                tar.add(member, arcname=name, recursive=False)
        raw.flush()
        os.fsync(raw.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup_run(
    *, directory: Path, keep: int, tenant: Tenant | None = None, actor=None, daily: bool = False
) -> tuple[BackupFile, list[Path]]:
    """Back up (the whole database, or one workspace), rotate that scope's backups (`daily`:
    backup_rotate's), and record both in the platform's audit chain: the file and the deleted
    ones. BackupBusy, and nothing done, while another backup of that scope runs."""
    actor = actor or "lifecycle"
    scope = DATABASE if tenant is None else tenant_scope(tenant)
    with _one_backup_at_a_time(scope):
        return _backup_run(directory=directory, keep=keep, tenant=tenant, actor=actor, scope=scope, daily=daily)


@contextmanager
def _one_backup_at_a_time(scope: str) -> Iterator[None]:
    """One backup of a scope at a time, across processes: a PostgreSQL advisory lock held by a
    connection of its own for as long as the backup runs. The server lets go of it with that
    connection, so a worker lost mid-dump holds nothing back, not even for a minute."""
    with _connect(connection.settings_dict["NAME"], autocommit=True) as holder:
        (acquired,) = holder.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [backup_lock_name(scope)]
        ).fetchone()
        if not acquired:
            raise BackupBusy(f"a backup of {scope} is already running")
        if scope == DATABASE:
            # No workspace's schema dropped under pg_dump (it would fail the whole database's
            # backup): purges under way finish first, and none starts until the dump is done.
            holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [SCHEMAS_LOCK])
        try:
            yield  # a lost worker's locks go with its connection
        finally:
            # Let go before closing: the server ends a closed connection's backend, and frees its
            # locks, a moment after the client has gone, so the next backup of the scope, started
            # at once, found it "already running" (BackupBusy).
            with contextlib.suppress(Exception):
                holder.execute("SELECT pg_advisory_unlock_all()")


# Taken by a whole-database backup for its dump, and shared by each purge (deletion.py).
SCHEMAS_LOCK = "foundry:schemas"


def backup_lock_name(scope: str) -> str:
    """What the advisory lock of a scope's backups is keyed by (hashed to a 64-bit number)."""
    return f"foundry:backup:{scope}"


def _backup_run(
    *, directory: Path, keep: int, tenant: Tenant | None, actor, scope: str, daily: bool
) -> tuple[BackupFile, list[Path]]:
    from apps.audit.models import PLATFORM, Outcome
    from apps.audit.services import audit_record

    made = None
    try:
        _work_left_over_clear(directory, scope)
        made = backup_create(directory=directory, tenant=tenant)
        deleted = backup_rotate(directory=directory, scope=scope, keep=keep, daily=daily)
    except Exception as error:
        # Every failure is recorded (docs/operations/disaster-recovery.md), not only the ones the
        # backup names: the backup role refused a connection (its password rotated, too many
        # clients), the dump's COPY cancelled, the rotation unable to delete a file...
        # Another error's text is not recorded (only its type): it may quote what it failed on, a
        # database URL with its password (django-environ's port error, psycopg's conninfo), into a
        # trail nothing can be removed from. Its traceback goes to the worker's log, as it did.
        reason = str(error) if isinstance(error, BackupError) else type(error).__name__
        data = {"error": reason[:500], **({"file": made.path.name} if made else {})}
        try:
            with transaction.atomic():
                audit_record(
                    action="lifecycle.backup.failed",
                    actor=actor,
                    target=("backup", scope),
                    data=data,
                    outcome=Outcome.FAILURE,
                    chain=PLATFORM,
                )
        except Exception:  # the database itself gone: the backup's own error is the one to raise
            logger.exception("backup %s: its failure could not be recorded", scope)
        raise
    with transaction.atomic():
        audit_record(
            action="lifecycle.backup.created",
            actor=actor,
            target=("backup", scope),
            data={
                "file": made.path.name,
                "size": made.size,
                "seconds": round(made.seconds, 3),
                "deleted": [path.name for path in deleted],
            },
            chain=PLATFORM,
        )
    return made, deleted


# --- rotation -----------------------------------------------------------------------------------
def backup_list(directory: Path, scope: str) -> list[Path]:
    """The complete backups of `scope` in `directory`, oldest first (names sort by time)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and match["scope"] == scope and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.name)


def backup_rotate(*, directory: Path, scope: str, keep: int, daily: bool = False) -> list[Path]:
    """Delete all but the newest `keep` backups of `scope` (0 keeps all); the deleted files.
    `daily` (the beat job's): every backup of the newest `keep` days (UTC) instead, so a day's job
    run twice (its message delivered again, or replayed by whoever can write to the broker) never
    rotates away an older day's backup, nor one an operator made that day (before an upgrade)."""
    if keep <= 0:
        return []
    backups = backup_list(directory, scope)
    if daily:
        days = sorted({_NAME.match(path.name)["at"][:8] for path in backups})[-keep:]
        old = [path for path in backups if _NAME.match(path.name)["at"][:8] not in days]
    else:
        old = backups[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


# --- reading a backup ---------------------------------------------------------------------------
def backup_open(path: Path) -> Backup:
    """The backup at `path`, every member checked against its manifest; BackupError if it is
    missing, truncated, altered or not a backup of this format."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such file.")
    try:
        with tarfile.open(path, mode="r:") as tar:
            manifest = _manifest(tar, path)
            names = {m.name for m in tar.getmembers() if m.name != MANIFEST}
            if names != set(manifest["members"]):
                raise BackupError(f"{path}: its members do not match its manifest (truncated or altered).")
            for name, expected in manifest["members"].items():
                if _member_sha256(tar, name) != expected["sha256"]:
                    raise BackupError(f"{path}: member {name} does not match its checksum (truncated or altered).")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BackupError(f"{path}: not a readable backup ({error}).") from None
    return Backup(path=path, manifest=manifest)


def _manifest(tar: tarfile.TarFile, path: Path) -> dict:
    try:
        file = tar.extractfile(MANIFEST)
        manifest = json.loads(file.read()) if file else None
    except KeyError:
        manifest = None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise BackupError(f"{path}: its manifest is not JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: not a {FORMAT} file (no manifest).")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BackupError(f"{path}: its manifest is incomplete (no format version).")
    if manifest["version"] > VERSION:
        version = manifest.get("version")
        raise BackupError(f"{path}: format version {version!r} is newer than this platform's ({VERSION}).")
    if _created_at(manifest) is None:
        raise BackupError(f"{path}: its manifest is incomplete (no time it was made).")
    if manifest.get("scope") not in {DATABASE, "tenant"} or not _members_are_sound(manifest.get("members")):
        raise BackupError(f"{path}: its manifest is incomplete.")
    if manifest["scope"] == "tenant" and not _tenant_manifest_is_sound(manifest):
        raise BackupError(f"{path}: its manifest is incomplete (the workspace, its tables or its schema's dump).")
    if manifest["scope"] == DATABASE and "database.dump" not in manifest["members"]:
        raise BackupError(f"{path}: its manifest is incomplete (no database.dump).")
    return manifest


def _created_at(manifest: dict) -> datetime | None:
    """When the backup was made (an aware time), or None."""
    try:
        at = datetime.fromisoformat(manifest.get("created_at"))
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo is not None else None


def _members_are_sound(members: object) -> bool:
    """Every member named with its SHA-256 (64 hex digits) and size."""
    return isinstance(members, dict) and all(
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) is not None
        and isinstance(entry.get("size"), int)
        and not isinstance(entry.get("size"), bool)
        for entry in members.values()
    )


def _tenant_manifest_is_sound(manifest: dict) -> bool:
    tenant, tables = manifest.get("tenant"), manifest.get("tables")
    if not isinstance(tenant, dict) or not isinstance(tables, list):
        return False
    if not (isinstance(tenant.get("id"), int) and all(isinstance(tenant.get(k), str) for k in ("slug", "schema_name"))):
        return False
    members = manifest["members"]
    history = manifest.get("history")  # absent from backups made before they kept it
    if history is not None and not _table_entry_is_sound(history, members):
        return False
    # The workspace's own row, once: without it the restore would load the rest for no workspace.
    own = [item.get("rows") for item in tables if isinstance(item, dict) and item.get("table") == "tenants_tenant"]
    return (
        "schema.dump" in members
        and own == [1]
        and all(isinstance(item, dict) and isinstance(item.get("table"), str) for item in tables)
        and all(_table_entry_is_sound(item, members) for item in tables)
    )


def _table_entry_is_sound(item: object, members: dict) -> bool:
    """A manifest's entry of rows: its columns, its number of rows and, with any, their member."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("columns"), list)
        and all(isinstance(c, str) for c in item["columns"])
        and isinstance(item.get("rows"), int)
        and not isinstance(item["rows"], bool)
        and (item["rows"] == 0 or item.get("member") in members)
    )


def _member_sha256(tar: tarfile.TarFile, name: str) -> str:
    file = tar.extractfile(name)
    if file is None:
        raise BackupError(f"{tar.name}: member {name} is not a file.")
    digest = hashlib.sha256()
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _extracted(backup: Backup, name: str) -> Iterator[Path]:
    """A member of the backup as a file of its own, for pg_restore: one without a name (O_TMPFILE),
    so a restore killed midway leaves no copy of the data on the disk. Its path is `/dev/fd/N`,
    which pg_restore opens (seekable) with the descriptor inherited (`_fds`)."""
    with tempfile.TemporaryFile(prefix="foundry-restore-") as out:
        with tarfile.open(backup.path, mode="r:") as tar:
            shutil.copyfileobj(tar.extractfile(name), out, _CHUNK)
        out.flush()
        yield Path(f"{_FD}{out.fileno()}")


# --- restoring ----------------------------------------------------------------------------------
def _connect(name: str, **options):
    """A connection to database `name` as the application role, or BackupError saying why not."""
    import psycopg

    env = pg_environment(database=name)
    params = {"host": env["PGHOST"], "port": env["PGPORT"], "user": env.get("PGUSER"), "dbname": name}
    try:
        return psycopg.connect(password=env.get("PGPASSWORD"), connect_timeout=10, **params, **options)
    except psycopg.OperationalError as error:  # no CONNECT on it, or it takes no connections
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise BackupError(f"database {name!r}: cannot connect to it ({reason}).") from None


def database_is_empty(name: str) -> bool:
    """Whether database `name` holds no table, view or sequence of its own."""
    with _connect(name) as conn:
        count = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
        ).fetchone()[0]
    return count == 0


def database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


# What --database takes: a name needing no quoting care (Django's quote_name doubles no quote).
DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")


def backup_restore_database(
    *, backup: Backup, database: str, create: bool = False, force: bool = False, actor: object = "lifecycle"
) -> None:
    """Restore a whole-database backup into `database`: a new one (`create`), or an existing
    empty one; one that holds anything is refused unless `force`, which drops the workspaces'
    schemas there, then what the backup holds, before recreating it (not undone if it fails).
    Each pg_restore runs as one transaction; a new database is dropped again if one fails.

    With an owner role (foundry/db/roles.py) in two passes, each logged in as the role that owns
    what it restores, so neither runs the other's code: the public schema as the owner (with
    its grants to the app role), then every other schema (the tenants') as the app role. Loading
    a tenant's rows as the owner would run any function its constraints call as the owner. The
    owner creates the database and lets the app role create schemas in it. With one role, one
    pass as that role, which owns everything. Then the restored database's platform chain records
    `lifecycle.backup.restored` (target type `database`)."""
    if backup.scope != DATABASE:
        raise BackupError(f"{backup.path}: a workspace's backup; it is restored into this database without --database.")
    if not DATABASE_NAME.fullmatch(database):
        raise BackupError(
            f"{database[:80]!r} is no database name this restore takes: letters, digits, _ and -, at most 63."
        )
    if connection.in_atomic_block:
        raise BackupError("A whole-database restore cannot run inside a transaction.")
    with as_owner():
        _database_ready(backup, database, create=create, force=force)
    command = [pg_binary("pg_restore"), "--no-password", "--exit-on-error", "--single-transaction", "--no-owner"]
    if force:
        command += ["--clean", "--if-exists"]
        _schemas_drop(backup, database)
    try:
        try:
            with _extracted(backup, "database.dump") as dump:
                target = ["-d", database, str(dump)]
                if owner_role() is None:
                    _run([*command, *target], env=pg_environment(database=database), what=str(backup.path))
                else:
                    with as_owner():
                        _run(
                            [*command, "--schema", "public", *target],
                            env=pg_environment(database=database),
                            what=str(backup.path),
                        )
                    tenants = [*command, "--no-acl", "--exclude-schema", "public", *target]
                    _run(tenants, env=pg_environment(database=database), what=str(backup.path))
        except OSError as error:  # the dump not extracted (a full or unwritable temporary directory)
            reason = error.strerror or type(error).__name__
            raise BackupError(f"{backup.path}: its dump could not be extracted for pg_restore ({reason}).") from None
    except BaseException:  # whatever stopped it, a database made for it is not left half restored
        if create:
            with as_owner(), connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(database)}")
        raise
    _database_restored_record(backup, database, actor=actor)


def _database_restored_record(backup: Backup, database: str, *, actor: object) -> None:
    """The restored database's platform chain says so: which backup (file, its dump's checksum as
    the manifest has it and backup_open checked, when it was made) it holds since, which explains
    why its events stop at that time and go on now."""
    from apps.audit.models import PLATFORM
    from apps.audit.services import audit_record

    data = {
        "file": backup.path.name,
        "dump_sha256": backup.manifest["members"]["database.dump"]["sha256"],
        "created_at": backup.manifest["created_at"],
    }
    with _connect(database, autocommit=True) as restored:
        audit_record(
            action="lifecycle.backup.restored",
            actor=actor,
            target=("database", database),
            data=data,
            chain=PLATFORM,
            conn=restored,
        )


_OWN_SCHEMAS = """
SELECT nspname FROM pg_namespace
 WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
   AND nspname <> 'public' AND nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
 ORDER BY 1
"""


def _schemas_drop(backup: Backup, database: str) -> None:
    """--force: drop the workspaces' schemas (and the template's) in `database`, as the role that
    owns them, one transaction each. Their triggers call public functions, which the public
    pass's --clean drops and recreates: PostgreSQL refuses that while the triggers exist (and a
    workspace the backup does not hold would be left without its public rows anyway)."""
    import psycopg
    from psycopg import sql

    try:
        with _connect(database, autocommit=True) as conn:
            for (name,) in conn.execute(_OWN_SCHEMAS).fetchall():
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(
            f"{backup.path}: the workspaces' schemas in {database!r} could not be dropped ({detail})."
        ) from None


def _database_ready(backup: Backup, database: str, *, create: bool, force: bool) -> None:
    if create:
        if database_exists(database):
            raise BackupError(f"{backup.path}: database {database!r} exists already (leave out --create).")
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(database)}")
            if owner_role() is not None:
                cursor.execute(
                    f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {connection.ops.quote_name(database)}"
                    f" TO {connection.ops.quote_name(app_role())}"
                )
    elif not database_exists(database):
        raise BackupError(f"{backup.path}: database {database!r} does not exist (add --create).")
    elif not force and not database_is_empty(database):
        raise BackupError(
            f"{backup.path}: database {database!r} is not empty; restoring over it needs --force "
            "(restore into a new database with --create instead)."
        )
    elif owner_role() is not None:
        _roles_may_restore(backup, database)


def _roles_may_restore(backup: Backup, database: str) -> None:
    """An existing database, restored in two passes: the owner role writes its public schema, the
    application role creates the workspaces' schemas (what --create grants it; granted here when
    the owner role may). Checked before anything is restored: else the public pass would be
    committed and the workspaces' refused, leaving half a platform."""
    owner, app = owner_role(), app_role()
    privileges = (
        "SELECT has_database_privilege(%(app)s, current_database(), 'CREATE')"
        " AND has_database_privilege(%(app)s, current_database(), 'CONNECT') AS app,"
        " has_schema_privilege(%(owner)s, 'public', 'CREATE') AS owner"
    )
    with _connect(database) as conn:
        ready = conn.execute(privileges, {"app": app, "owner": owner}).fetchone()
    if not ready[1]:
        raise BackupError(
            f"{backup.path}: the owner role {owner!r} may not create objects in the public schema of "
            f"database {database!r}; make it the database's owner (or restore into a new database with --create)."
        )
    if ready[0]:
        return
    name, role = connection.ops.quote_name(database), connection.ops.quote_name(app)
    with connection.cursor() as cursor:  # a grantor without the grant option only gets a warning
        cursor.execute(f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {name} TO {role}")
    with _connect(database) as conn:
        if conn.execute(privileges, {"app": app, "owner": owner}).fetchone()[0]:
            return
    raise BackupError(
        f"{backup.path}: the application role {app!r} may not create schemas in database {database!r}, and "
        "the owner role may not grant it; grant it CONNECT, CREATE on the database (or restore into a new "
        "database with --create)."
    )


@dataclass(frozen=True)
class TenantRestored:
    tenant: Tenant
    reapplied: Reapplied  # erasures registered since the backup, made again (or named)


def backup_restore_tenant(*, backup: Backup, actor: str = "lifecycle") -> TenantRestored:
    """Restore a workspace's backup into this database, where it must not exist (say, after an
    accidental purge): its schema with pg_restore, migrated to this version, then its public
    rows in one transaction. If the migration or the rows fail, the schema is dropped again:
    nothing is left half restored. Then every erasure registered for the workspace that the
    backup does not hold yet is made again (apps/lifecycle/erasure.py `erasures_reapply`),
    before its host's route is dropped.

    One restore of a workspace at a time. A restore that dies on the way (killed, out of
    memory) can be run again: the schema it left with no workspace row is dropped, as the
    platform's trail says a restore of that workspace began and never ended. Should it die after
    the rows, the workspace is suspended (it is, while erasures are owed: `erasures_reapply`
    runs again when it is resumed), never serving a person erased since the backup."""
    if backup.scope != "tenant":
        raise BackupError(f"{backup.path}: a whole-database backup; restore it with --database NAME.")
    with _one_restore_at_a_time(backup):
        return _restore_tenant(backup, actor)


@contextmanager
def _one_restore_at_a_time(backup: Backup) -> Iterator[None]:
    """A workspace's restores one at a time, across processes: an advisory lock held by a
    connection of its own, let go of with it by a process that dies."""
    with _connect(connection.settings_dict["NAME"], autocommit=True) as holder:
        name = f"foundry:restore:{backup.tenant['id']}"
        (acquired,) = holder.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name]).fetchone()
        if not acquired:
            raise BackupError(f"{backup.path}: a restore of workspace {backup.tenant['slug']!r} is under way.")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                holder.execute("SELECT pg_advisory_unlock_all()")


RESTORE_STARTED = "lifecycle.backup.restore_started"
RESTORED = "lifecycle.backup.restored"


def _restore_tenant(backup: Backup, actor: str) -> TenantRestored:
    from apps.lifecycle.erasure import erasures_owed

    tenant = backup.tenant
    _refuse_existing(backup)
    current = {table.name: table for table, _key in tenant_public_tables()}
    for item in backup.manifest["tables"]:
        table = current.get(item["table"])
        if table is None or not set(item["columns"]) <= set(stored_columns(table)):
            raise BackupError(f"{backup.path}: table {item['table']} does not fit this database's schema.")
    history = backup.manifest.get("history")
    if history and not set(history["columns"]) <= set(history_columns()):
        raise BackupError(f"{backup.path}: its model history does not fit this database's schema.")
    hold = erasures_owed(tenant["id"])
    _restore_started_record(backup, actor=actor)
    with _extracted(backup, "schema.dump") as dump:
        _dump_contents_check(backup, dump)
        command = [pg_binary("pg_restore"), "--no-password", "--exit-on-error", "--single-transaction", "--no-owner"]
        env = pg_environment(database=connection.settings_dict["NAME"])
        _run([*command, "-d", connection.settings_dict["NAME"], str(dump)], env=env, what=str(backup.path))
    try:
        _schema_migrate(backup, tenant["schema_name"])
        # As the public tables' owner: a trail retention pruned holds `audit.pruned` events, which
        # the events' policy lets the owner alone write (audit migration 0016).
        with as_owner():
            held = _public_rows_load(backup, tenant["id"], actor=actor, hold=hold)
        restored = Tenant.objects.get(pk=tenant["id"])
    except Exception as exc:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(tenant['schema_name'])} CASCADE")
        if isinstance(exc, BackupError):
            raise
        if isinstance(exc, IntegrityError):  # e.g. a custom domain another workspace took meanwhile
            detail = getattr(getattr(exc.__cause__, "diag", None), "message_detail", None) or str(exc)
            raise BackupError(
                f"{backup.path}: a row conflicts with this database's ({detail}); nothing restored."
            ) from None
        import psycopg

        if isinstance(exc, DatabaseError | psycopg.Error):  # a value this schema does not take (another version's)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackupError(f"{backup.path}: its rows do not load here ({detail}); nothing restored.") from None
        raise
    from apps.tenants.routing import route_invalidate

    # Before its host is served: an erased member's row (and password) is in the backup.
    reapplied = erasures_reapply(restored, actor=actor)
    if held:
        from apps.tenants.services import tenant_resume

        restored = tenant_resume(tenant=restored, actor=actor)
    route_invalidate(*restored.domains.values_list("domain", flat=True))
    return TenantRestored(tenant=restored, reapplied=reapplied)


# What a workspace's pg_dump holds (tables, their data, sequences, indexes, constraints, the
# append-only triggers), and nothing else: a function, a procedure, a type, an extension... would
# be defined in this database by the restore, as the application role.
_DUMP_KINDS = (
    "SCHEMA", "TABLE", "TABLE DATA", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "DEFAULT",
    "INDEX", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "COMMENT", "ACL", "POLICY", "ROW SECURITY",
)  # fmt: skip
_DUMP_ENTRY = re.compile(r"\d+; \d+ \d+ (?P<rest>.*)")


def _dump_contents_check(backup: Backup, dump: Path) -> None:
    """BackupError unless every entry of the schema's dump is a kind a workspace's dump holds, in
    the workspace's own schema. The checksums are no signature: a file edited to define other
    objects, or another schema's, is refused before anything of it runs."""
    schema = backup.tenant["schema_name"]
    command = [pg_binary("pg_restore"), "--list", str(dump)]
    try:
        listing = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=120, pass_fds=_fds(command)
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"{backup.path}: its schema dump could not be read in time.") from None
    if listing.returncode != 0:
        raise BackupError(f"{backup.path}: its schema dump is not one pg_restore reads.")
    for line in listing.stdout.splitlines():
        entry = _DUMP_ENTRY.fullmatch(line.strip())
        if entry is None:
            continue  # a comment (`;`) or a blank line
        rest = entry["rest"]
        kind = next((k for k in sorted(_DUMP_KINDS, key=len, reverse=True) if rest.startswith(k + " ")), None)
        namespace, _, named = rest[len(kind) + 1 :].partition(" ") if kind else ("", "", "")
        own_schema = kind == "SCHEMA" and namespace == "-" and named.split(" ", 1)[0] == schema
        if kind is None or not (own_schema or (namespace == schema and kind != "SCHEMA")):
            raise BackupError(
                f"{backup.path}: its schema dump holds what a workspace's does not ({rest[:120]!r}); nothing restored."
            )


def secrets_undecryptable(tenant: Tenant) -> list[str]:
    """The workspace's stored secrets that no FOUNDRY_ENCRYPTION_KEYS key opens — a backup made
    while another key encrypted them, since removed: `provider <name>`, `sso`, `sink <name>`.
    Each goes unusable (`secret_undecryptable`) until that key is put back or the secret set anew."""
    from django_tenants.utils import schema_context

    from apps.audit.models import AuditSink
    from apps.identity.models import SsoConfiguration
    from apps.providers.encryption import EncryptionUnavailable, SecretUndecryptable, secret_decrypt
    from apps.providers.models import ProviderCredential

    with schema_context(tenant.schema_name):
        stored = [
            (f"provider {provider}", token)
            for provider, token in ProviderCredential.objects.exclude(api_key_encrypted="")
            .order_by("provider")
            .values_list("provider", "api_key_encrypted")
        ]
        stored += [
            ("sso", token)
            for token in SsoConfiguration.objects.exclude(client_secret_encrypted="").values_list(
                "client_secret_encrypted", flat=True
            )
        ]
    with rls_scope(tenant.pk):
        stored += [
            (f"sink {name}", token)
            for name, token in AuditSink.objects.filter(tenant_id=tenant.pk)
            .exclude(secret_encrypted="")
            .order_by("name")
            .values_list("name", "secret_encrypted")
        ]
    closed = []
    for label, token in stored:
        try:
            secret_decrypt(token, place=None)  # whether it opens, wherever it was sealed
        except (SecretUndecryptable, EncryptionUnavailable):
            closed.append(label)
    return closed


def _schema_migrate(backup: Backup, schema: str) -> None:
    """Bring the restored schema up to this version's migrations: a backup taken before an upgrade
    holds the schema as it was then. One made by a newer version (a migration unknown here) is
    refused: this code does not know its tables."""
    from django.core.management import call_command
    from django.db.migrations.loader import MigrationLoader

    from apps.lifecycle.archive import applied_migrations

    # This version's migrations, and every one its workspaces have applied (the template's
    # record keeps those a squash replaced, or of an app since removed), as an import judges.
    known = set(MigrationLoader(connection, ignore_no_migrations=True).graph.nodes)
    for app, names in applied_migrations(settings.TENANT_BASE_SCHEMA).items():
        known.update((app, name) for name in names)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {connection.ops.quote_name(schema)}.django_migrations")
        unknown = sorted(f"{app}.{name}" for app, name in cursor.fetchall() if (app, name) not in known)
    if unknown:
        raise BackupError(
            f"{backup.path}: made by a newer version (migrations unknown here: {', '.join(unknown[:5])}); "
            "restore it with that version."
        )
    try:
        call_command("migrate_schemas", schema_name=schema, tenant=True, interactive=False, verbosity=0)
    finally:
        connection.set_schema_to_public()


def _refuse_existing(backup: Backup) -> None:
    """BackupError when the workspace, or its schema, is here already; but a schema no workspace
    has, left by a restore of this workspace that never ended, is dropped."""
    tenant = backup.tenant
    if Tenant.objects.filter(slug=tenant["slug"]).exists():
        raise BackupError(f"{backup.path}: a workspace with slug {tenant['slug']!r} exists already.")
    if Tenant.objects.filter(pk=tenant["id"]).exists():
        raise BackupError(f"{backup.path}: a workspace with id {tenant['id']} exists already.")
    schema = tenant["schema_name"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        if not cursor.fetchone():
            return
        if Tenant.objects.filter(schema_name=schema).exists() or not _restore_unfinished(tenant["id"]):
            raise BackupError(f"{backup.path}: schema {schema!r} exists already.")
        logger.warning("restore of %s: dropping schema %s, left by a restore that never ended", tenant["slug"], schema)
        cursor.execute(f"DROP SCHEMA {connection.ops.quote_name(schema)} CASCADE")


def _restore_unfinished(tenant_id: int) -> bool:
    """Whether the platform's trail says a restore of workspace `tenant_id` began and never ended
    (its last restore event a start)."""
    from apps.audit.models import PLATFORM, AuditEvent
    from apps.audit.scope import rls_scope

    with rls_scope(PLATFORM):
        last = (
            AuditEvent.objects.filter(
                tenant_id=PLATFORM,
                action__in=[RESTORE_STARTED, RESTORED],
                target_type="tenant",
                target_id=str(tenant_id),
            )
            .order_by("-seq")
            .values_list("action", flat=True)
            .first()
        )
    return last == RESTORE_STARTED


def _restore_started_record(backup: Backup, *, actor: object) -> None:
    """The platform's chain says a restore of the workspace began, before anything of it is
    written: what a restore that never ended left can be told from anything else."""
    from apps.audit.models import PLATFORM
    from apps.audit.services import audit_record

    tenant = backup.tenant
    data = {"file": backup.path.name, "slug": tenant["slug"], "created_at": backup.manifest["created_at"]}
    with transaction.atomic():
        audit_record(action=RESTORE_STARTED, actor=actor, target=("tenant", tenant["id"]), data=data, chain=PLATFORM)


def _public_rows_load(backup: Backup, tenant_id: int, *, actor: object, hold: bool = False) -> bool:
    """Every public row of the backup, in one transaction, in its tenant's scopes (as the tables'
    owner, when there is one: the owner's Row-Level Security is forced all the same). COPY cannot
    write into a table under Row-Level Security, so each goes through a temporary table. Each
    table's id sequence is moved past the ids restored before anything new is written."""
    maxima = {}
    keys = {table.name: key for table, key in tenant_public_tables()}
    with (
        tarfile.open(backup.path, mode="r:") as tar,
        transaction.atomic(),
        usage_scope(tenant_id),
        rls_scope(tenant_id),
        connection.cursor() as cursor,
    ):
        for item in backup.manifest["tables"]:
            if not item["rows"]:
                continue
            columns = ", ".join(_quoted(item["columns"]))
            staging = connection.ops.quote_name(f"_restore_{item['table']}")
            target = Table("public", item["table"]).qualified
            cursor.execute(f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS SELECT {columns} FROM {target} LIMIT 0")
            source = tar.extractfile(item["member"])
            with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                while chunk := source.read(_CHUNK):
                    copy.write(chunk)
            # The checksums are no signature: a row naming another workspace (an edited file) is
            # refused, never written into that workspace.
            key = keys.get(item["table"])
            if key is None or key not in item["columns"]:
                raise BackupError(f"{backup.path}: table {item['table']} holds no workspace's rows.")
            cursor.execute(
                f"SELECT count(*) FROM {staging} WHERE {connection.ops.quote_name(key)} IS DISTINCT FROM %s",
                [tenant_id],
            )
            if foreign := cursor.fetchone()[0]:
                raise BackupError(
                    f"{backup.path}: {foreign} row(s) of {item['table']} belong to another workspace than "
                    f"{backup.tenant['slug']!r}; nothing restored."
                )
            if item["table"] == "tenants_tenant":
                _tenant_row_check(backup, cursor, staging)
            elif item["table"] == "tenants_domain":
                _domain_rows_check(backup, cursor, staging)
            cursor.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging}")
            if "id" in item["columns"]:
                cursor.execute(f"SELECT max(id) FROM {staging}")
                if isinstance(top := cursor.fetchone()[0], int):
                    maxima[item["table"]] = top
        # A backup taken while the workspace's deletion was scheduled holds it as `deleting`, due
        # to be purged: restored as it was, the hourly purge would take it again. It comes back
        # suspended, its deletion cancelled, for an operator to resume.
        cursor.execute(
            "UPDATE public.tenants_tenant SET status = %s, status_changed_at = now(), purge_after = NULL,"
            " deletion_requested_by = '', status_before_deletion = '' WHERE id = %s AND status = %s",
            [Tenant.Status.SUSPENDED, tenant_id, Tenant.Status.DELETING],
        )
        deletion_cancelled = cursor.rowcount == 1
        held = False
        if hold:  # erasures owed: not served until they are made (or the workspace is resumed)
            cursor.execute(
                "UPDATE public.tenants_tenant SET status = %s, status_changed_at = now() WHERE id = %s AND status = %s",
                [Tenant.Status.SUSPENDED, tenant_id, Tenant.Status.ACTIVE],
            )
            held = cursor.rowcount == 1
        _history_load(backup, tar, cursor, tenant_id)
        _sequences_past(maxima)
        _restored_record(backup, deletion_cancelled=deletion_cancelled, held=held, actor=actor)
    return held


def _history_load(backup: Backup, tar: tarfile.TarFile, cursor, tenant_id: int) -> None:
    """The backup's model history of the workspace's public rows, after those rows (in their
    transaction): each entry's content type found by app and model, a person no longer here
    (an operator removed since) unlinked as django-auditlog does (`actor_email` stays), an object
    this database holds history for already (the workspace lost without its purge) left as it
    is, and so is the history of a domain, budget or sink deleted before the backup. An entry
    of another kind, or of another workspace's tenant row, is refused: the checksums are no
    signature, and an edited file must not write another workspace's history."""
    history = backup.manifest.get("history")
    if not history or not history["rows"]:
        return  # a backup made before backups kept the history, or a workspace without any
    columns = ", ".join(_quoted(history["columns"]))
    cursor.execute(
        "CREATE TEMP TABLE _restore_history_lines ON COMMIT DROP AS"
        f" SELECT ''::text AS app_label, ''::text AS model, {columns} FROM public.{HISTORY} LIMIT 0"
    )
    cursor.execute("ALTER TABLE _restore_history_lines ADD COLUMN line bigint GENERATED ALWAYS AS IDENTITY")
    source = tar.extractfile(history["member"])
    with cursor.copy(f"COPY _restore_history_lines (app_label, model, {columns}) FROM STDIN") as copy:
        while chunk := source.read(_CHUNK):
            copy.write(chunk)
    cursor.execute(
        "CREATE TEMP TABLE _restore_history ON COMMIT DROP AS"
        f" SELECT c.id AS content_type_id, r.line, {', '.join('r.' + c for c in _quoted(history['columns']))}"
        " FROM _restore_history_lines r LEFT JOIN public.django_content_type c USING (app_label, model)"
    )
    # Of the four kinds a workspace's public history holds, and of its own tenant row.
    cursor.execute(
        "SELECT count(*) FROM _restore_history l LEFT JOIN public.django_content_type c ON c.id = l.content_type_id"
        " WHERE c.id IS NULL OR (c.app_label, c.model) NOT IN"
        "   (('tenants', 'tenant'), ('tenants', 'domain'), ('billing', 'budget'), ('audit', 'auditsink'))"
        " OR (c.app_label = 'tenants' AND c.model = 'tenant' AND l.object_pk IS DISTINCT FROM %s)",
        [str(tenant_id)],
    )
    if foreign := cursor.fetchone()[0]:
        raise BackupError(
            f"{backup.path}: {foreign} model history entr{'y is' if foreign == 1 else 'ies are'} not of "
            f"{backup.tenant['slug']!r}'s own rows; nothing restored."
        )
    # Only of the rows just restored: an entry of a domain, budget or sink deleted before the
    # backup names an id the file alone vouches for (another workspace's next budget's, say).
    where, params = tenant_public_history(tenant_id, deleted=False)
    cursor.execute(
        "DELETE FROM _restore_history l USING public.django_content_type c"
        f" WHERE c.id = l.content_type_id AND NOT coalesce({where}, false)",
        params,
    )
    if "actor_id" in history["columns"]:
        cursor.execute(
            "UPDATE _restore_history h SET actor_id = NULL WHERE actor_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM public.accounts_user u WHERE u.id = h.actor_id)"
        )
    cursor.execute(
        f"DELETE FROM _restore_history h WHERE EXISTS (SELECT 1 FROM public.{HISTORY} e"
        " WHERE e.content_type_id = h.content_type_id AND e.object_pk = h.object_pk)"
    )
    cursor.execute(
        f"INSERT INTO public.{HISTORY} (content_type_id, {columns})"
        f" SELECT content_type_id, {columns} FROM _restore_history ORDER BY line"
    )


def _tenant_row_check(backup: Backup, cursor, staging: str) -> None:
    """The workspace's row names the schema and slug its manifest does, and no schema the platform
    keeps for itself: edited to name the template schema every new workspace is copied from (or
    `public`), the workspace would have been routed there."""
    schema, slug = backup.tenant["schema_name"], backup.tenant["slug"]
    cursor.execute(f"SELECT schema_name, slug FROM {staging}")
    rows = cursor.fetchall()
    if rows != [(schema, slug)] or schema in ("public", settings.TENANT_BASE_SCHEMA) or schema.startswith("pg_"):
        raise BackupError(
            f"{backup.path}: its workspace row is not the workspace its manifest names; nothing restored."
        )


def _domain_rows_check(backup: Backup, cursor, staging: str) -> None:
    """The workspace's hosts are its own: its slug's under the base domain, and custom domains
    that an import may attach (archive.py `_domain_attachable`: none under the base domain, which
    are the platform's to give, nor an address or a host the platform answers on itself). Edited
    to name `www.<base>` or another workspace's future host, the backup is refused."""
    from apps.lifecycle.archive import ArchiveError, _domain_attachable
    from apps.tenants.services import tenant_domain_for_slug

    own = tenant_domain_for_slug(backup.tenant["slug"])
    cursor.execute(f"SELECT domain FROM {staging}")
    for (domain,) in cursor.fetchall():
        try:
            kept = domain == own or _domain_attachable(domain)
        except ArchiveError:
            kept = False
        if not kept:
            raise BackupError(
                f"{backup.path}: its workspace holds the host {str(domain)[:100]!r}, which is not the "
                "workspace's to have; nothing restored."
            )


_SEQUENCE_PAST = "SELECT setval(%s::regclass, greatest(%s, last_value)) FROM {}"


def _sequences_past(maxima: dict[str, int]) -> None:
    """Each public table's id sequence moved past the ids restored into it, never back (rows
    newer than the backup may hold higher ones): restored over an older whole-database restore,
    the sequences would otherwise hand out ids the restored rows hold. As the sequences' owner,
    on a connection of its own (a sequence moves outside transactions: nothing to roll back)."""
    if owner_role() is None:  # one role owns everything: this connection may
        _sequences_move(connection.cursor(), maxima)
        return
    import psycopg

    db = connection.settings_dict
    params = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "dbname": db["NAME"]}
    owner = {"user": owner_role(), "password": settings.FOUNDRY_DB_OWNER_PASSWORD}
    with psycopg.connect(autocommit=True, connect_timeout=10, **params, **owner) as conn:
        _sequences_move(conn.cursor(), maxima)


def _sequences_move(cursor, maxima: dict[str, int]) -> None:
    with cursor:
        for table, top in maxima.items():
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f"public.{table}"])
            sequence = cursor.fetchone()[0]
            if sequence:  # from the catalog: a quoted, qualified name
                cursor.execute(_SEQUENCE_PAST.format(sequence), [sequence, top])


def _restored_record(backup: Backup, *, deletion_cancelled: bool, held: bool, actor: object) -> None:
    from apps.audit.models import PLATFORM
    from apps.audit.services import audit_record

    tenant = backup.tenant
    data = {"file": backup.path.name, "slug": tenant["slug"], "created_at": backup.manifest["created_at"]}
    if held:
        data["suspended_until_erasures_made"] = True
    audit_record(
        action=RESTORED,
        actor=actor,
        target=("tenant", tenant["id"]),
        data={**data, **({"deletion_cancelled": True, "status": "suspended"} if deletion_cancelled else {})},
        chain=PLATFORM,
    )
