"""A workspace's data as one portable archive, and a new workspace made from one (docs/export.md).

The archive is a zip file: one NDJSON member per table — each line a row as PostgreSQL's
`row_to_json` writes it — and `manifest.json` last, with the format and schema versions, every
member's row count, size and SHA-256. PostgreSQL writes the JSON and reads it back (COPY both
ways), so no row passes through Python objects.

Which tables: `inventory.schema_tables` of the workspace's schema (its export jobs and sessions
apart) and `inventory.public_tenant_tables` (rows with its `tenant_id`), plus its own
`tenants_tenant` row and the schema's content types and permissions (`reference/`, to map the
ids that point at them). Secrets are not exported: every `*_encrypted` column is blanked.
"""
# ruff: noqa: S608 — names in this module's SQL come from the catalog and are quoted; values are parameters.

import hashlib
import importlib
import json
import os
import queue
import re
import secrets
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import psycopg
from auditlog.receivers import log_create
from auditlog.registry import auditlog
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, OperationalError, ProgrammingError, connection, models, transaction
from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name, schema_context

from apps.audit.models import PLATFORM, AuditCheckpoint, AuditSink
from apps.audit.scope import rls_scope
from apps.audit.selectors import audit_chain_base
from apps.audit.services import audit_chain_base_set, audit_record
from apps.audit.signing import KEY_ID_MAX, checkpoint_key, keys_untrusted, public_keys
from apps.audit.verify import chain_ids
from apps.billing.rls import usage_scope
from apps.lifecycle.inventory import Table, public_tenant_tables, schema_tables, stored_columns
from apps.runs.models import Approval, Run
from apps.tenants.limits import LIMIT_NAMES
from apps.tenants.models import Domain, Tenant
from apps.tenants.routing import route_invalidate
from apps.tenants.schemas import schema_create, schema_is_present
from apps.tenants.services import (
    http_networks_clean,
    limit_problem,
    schema_name_for_slug,
    tenant_domain_for_slug,
    tenant_name_problem,
    tenant_slug_validate,
)
from foundry.errors import ServiceError

FORMAT = "foundry-tenant-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Not the workspace's data: its export jobs (they describe archives), its sessions (bearer secrets),
# the answers kept for API retries (apps/tokens/idempotency.py: a day's, sealed to this schema).
EXCLUDED_TABLES = frozenset({"lifecycle_export", "django_session", "tokens_idempotencykey"})
# Ids in the workspace's tables point at these; they are mapped by natural key on import.
REFERENCE_TABLES = ("django_content_type", "auth_permission")
SECRET_SUFFIX = "_encrypted"  # encrypted secrets (provider keys, SSO client secrets, sink keys)
# What a secret's holders are shown of it (`api_key_last4` beside `api_key_encrypted`): blank with
# the secret, so a copy shows no key where it holds none, and which credentials need entering again.
SHOWN_SUFFIX = "_last4"
PASSWORD = ("accounts_user", "password")  # members' password hashes: exported by an owner's export only
# Columns exported as an expression of their row. A webhook sink whose signing secret stays
# behind arrives disabled: enabled, it would push the trail unsigned to a receiver that checks
# signatures (or one that does not); its admin sets the secret again and enables it. API tokens
# arrive revoked (as of the export): a bearer token of the source must not open the copy too,
# where revoking it on the source would not reach; the copy's admins issue its own.
EXPORTED_AS = {
    ("audit_auditsink", "enabled"): "enabled AND secret_encrypted = ''",
    ("tokens_apitoken", "revoked_at"): "coalesce(revoked_at, now())",
}
IMPORTED_RUN_MESSAGE = "Not resumed in this copy: it was under way in the workspace it was exported from."
# The tenant row's settings an import takes over (its identity, status and times are the new one's).
TENANT_SETTINGS = (
    "plan",
    "http_allowed_networks",
    "requests_per_second_override",
    "burst_override",
    "concurrent_runs_override",
    "monthly_tokens_override",
    "trace_content",
)
# One JSON document per line, as is: CSV with a quote and delimiter that JSON never holds raw
# (row_to_json escapes every control character), so COPY neither quotes nor escapes anything.
RAW_LINES = "(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 8 << 20  # a manifest lists the members (~200 bytes each): far below this
BULK_ROWS = 10_000  # a member this large loads without indexes and keys, rebuilt after (_bulk_load)
KEYS_UNTRUSTED = (
    "Its audit checkpoints were signed by keys this platform does not list ({keys}): they verify once"
    " FOUNDRY_AUDIT_PUBLIC_KEYS lists the public keys of the platform it came from (docs/export.md)."
)
NETWORKS_LEFT = (
    "The archive lets its http tools reach the private networks {networks}: left out (an archive is its"
    " owners' to edit). Grant those needed with `manage.py tenant_http_networks {slug} --allow CIDR`."
)
MAX_SIGNING_KEYS = 1000  # an archive's audit.signing_keys: one a rotation, far fewer in years
MAX_JSON_DEPTH = 500  # levels of a JSON value: Python decodes ~1,000 (with the stack a request uses, fewer)
# …and is parsed ahead, on this many connections at once, into a staging schema (_Staging).
PARSERS = max(1, min(2, os.cpu_count() or 1))
STAGING_PREFIX = "_import_"  # + random hex: a staging schema, never a workspace's (slugs have no "_")
# PostgreSQL's refusals of a value past its limits (JSON nested past max_stack_depth: 54001).
ROW_TOO_MUCH = (psycopg.errors.ProgramLimitExceeded, psycopg.errors.StatementTooComplex)
MEMBER_RE = re.compile(r"^(schema|public|reference)/([a-z_][a-z0-9_]{0,62})\.ndjson\Z")

Progress = Callable[[int, int], None]


class ArchiveError(ServiceError):
    """A refused archive or import: a stable `code`, a plain message, and the `member` at fault."""

    def __init__(self, code: str, message: str, *, member: str | None = None):
        super().__init__(code, message, details={"member": member} if member else None)
        self.member = member


# --- the catalog --------------------------------------------------------------------------------
# Names put in SQL come from the catalog and are quoted (`_quoted`, Table.qualified); the
# archive's own names are only ever compared with them.


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _generated_keys(table: Table) -> set[str]:
    """Primary-key columns numbered by the database (identity or sequence default)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY (i.indkey) LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary"
            " AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%')",
            [table.qualified],
        )
        return {name for (name,) in cursor.fetchall()}


def applied_migrations(schema: str) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {_quoted(schema)}.django_migrations ORDER BY app, id")
        applied: dict[str, list[str]] = {}
        for app, name in cursor.fetchall():
            applied.setdefault(app, []).append(name)
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = 'checkpoint_migrations')",
            [schema],
        )
        if cursor.fetchone()[0]:
            cursor.execute(f"SELECT v FROM {_quoted(schema)}.checkpoint_migrations ORDER BY v")
            applied["langgraph-checkpoint"] = [str(v) for (v,) in cursor.fetchall()]
    return applied


def _schema_version(schema: str) -> dict:
    return {"tenant": applied_migrations(schema), "public": applied_migrations("public")}


# --- export -------------------------------------------------------------------------------------


@contextmanager
def _snapshot() -> Iterator[None]:
    """A read-only REPEATABLE READ transaction: every table read as of one moment. Inside a
    caller's transaction (a test's), that transaction is the unit read."""
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _exported(table: Table, column: str, *, password_hashes: bool) -> str:
    """The SELECT item of `column` in an archive: blank for a secret, EXPORTED_AS's, else itself."""
    if column.endswith(SECRET_SUFFIX) or column.endswith(SHOWN_SUFFIX):
        return f"''::text AS {_quoted(column)}"
    if (table.name, column) == PASSWORD and not password_hashes:
        return f"'{UNUSABLE_PASSWORD_PREFIX}'::text AS {_quoted(column)}"  # no password to sign in with
    if (table.name, column) in EXPORTED_AS:
        return f"{EXPORTED_AS[table.name, column]} AS {_quoted(column)}"
    return _quoted(column)


def _export_plan(tenant: Tenant, *, password_hashes: bool) -> list[tuple[str, Table, list[str], str]]:
    """(member name, table, columns, SELECT of its rows) for every member, in load order."""
    plan = []
    for table in schema_tables(tenant.schema_name):
        if table.name not in EXCLUDED_TABLES:
            plan.append((f"schema/{table.name}.ndjson", table, ""))
    for name in REFERENCE_TABLES:
        plan.append((f"reference/{name}.ndjson", Table(tenant.schema_name, name), ""))
    plan.append(("public/tenants_tenant.ndjson", Table("public", "tenants_tenant"), f"WHERE id = {int(tenant.pk)}"))
    for table in public_tenant_tables():
        plan.append((f"public/{table.name}.ndjson", table, f"WHERE tenant_id = {int(tenant.pk)}"))
    selects = []
    for member, table, where in plan:
        columns = stored_columns(table)
        # Secrets blanked: an encrypted value is no use elsewhere, and no one's to take away.
        listed = ", ".join(_exported(table, c, password_hashes=password_hashes) for c in columns)
        selects.append((member, table, columns, f"SELECT {listed} FROM {table.qualified} {where}"))
    return selects


class _Member:
    """One member being written: hashed, counted and sized as it streams."""

    def __init__(self, archive: zipfile.ZipFile, name: str, when: tuple):
        info = zipfile.ZipInfo(name, date_time=when)
        info.compress_type = zipfile.ZIP_DEFLATED
        self.file = archive.open(info, "w", force_zip64=True)
        self.sha256 = hashlib.sha256()
        self.rows = 0
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
        self.file.write(data)
        self.sha256.update(data)
        self.rows += data.count(b"\n")
        self.size += len(data)

    def close(self) -> None:
        self.file.close()


def tenant_export(
    tenant: Tenant,
    out: BinaryIO,
    *,
    progress: Progress | None = None,
    actor: object = "lifecycle",
    record: bool = True,
    password_hashes: bool = True,
) -> dict:
    """Write the workspace's archive to `out` (any writable binary stream); its manifest.

    Read in one read-only snapshot; `progress(done_rows, total_rows)` is called inside it, so a
    caller recording progress in the database does so on a connection of its own. The event
    `tenant.exported` is recorded in the workspace's chain after the snapshot (so never in it),
    unless `record` is False: an export job records it once its archive is stored. Without
    `password_hashes`, members' passwords are exported unusable (listed in `secrets_omitted`)."""
    started = datetime.now(UTC)
    when = started.timetuple()[:6]
    members = []
    archive = member = None
    try:
        with _snapshot(), ExitStack() as scopes, connection.cursor() as cursor:
            scopes.enter_context(usage_scope(tenant.pk))
            scopes.enter_context(rls_scope(tenant.pk))
            plan = _export_plan(tenant, password_hashes=password_hashes)
            counts = []
            for _, _, _, select in plan:
                cursor.execute(f"SELECT count(*) FROM ({select}) AS t")
                counts.append(cursor.fetchone()[0])
            total, done = sum(counts), 0
            if progress:
                progress(0, total)
            version = _schema_version(tenant.schema_name)
            archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True)
            for (name, table, columns, select), count in zip(plan, counts, strict=True):
                member = _Member(archive, name, when)
                buffer = bytearray()
                with cursor.cursor.copy(
                    f"COPY (SELECT row_to_json(t) FROM ({select}) AS t) TO STDOUT {RAW_LINES}"
                ) as copy:
                    for chunk in copy:
                        buffer += chunk
                        if len(buffer) >= CHUNK:
                            member.write(buffer)
                            buffer.clear()
                            if progress:
                                progress(done + member.rows, total)
                member.write(buffer)
                member.close()
                if member.rows != count:  # the snapshot guarantees it; a mismatch is a bug, not an archive
                    raise RuntimeError(f"{name}: counted {count} rows, wrote {member.rows}")
                done += member.rows
                if progress:
                    progress(done, total)
                members.append(
                    {
                        "name": name,
                        "table": table.name,
                        "rows": member.rows,
                        "bytes": member.size,
                        "sha256": member.sha256.hexdigest(),
                        "columns": columns,
                    }
                )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": started.isoformat().replace("+00:00", "Z"),
            "tenant": {"id": tenant.pk, "slug": tenant.slug, "name": tenant.name, "schema": tenant.schema_name},
            "schema_version": version,
            "audit": _chain_ids(tenant.pk),
            "secrets_omitted": sorted(
                f"{m['table']}.{c}"
                for m in members
                for c in m["columns"]
                if m["rows"] and (c.endswith(SECRET_SUFFIX) or ((m["table"], c) == PASSWORD and not password_hashes))
            ),
            "rows": done,
            "members": members,
            "sequences": _sequences_read(tenant.schema_name),
        }
        info = zipfile.ZipInfo(MANIFEST, date_time=when)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    except BaseException:
        # The archive of a failed export is thrown away, but closed here all the same, its open
        # member first: left open, the garbage collector would write them later, to a file the
        # caller has closed by then.
        for part in (member, archive):
            if part is not None:
                with suppress(Exception):
                    part.close()
        raise
    archive.close()
    if record:
        with transaction.atomic():
            tenant_exported_record(tenant, manifest, actor)
    return manifest


def tenant_exported_record(tenant: Tenant, manifest: dict, actor: object) -> None:
    """The event that the workspace's data left the platform (`tenant.exported`), in its chain."""
    audit_record(
        action="tenant.exported",
        actor=actor,
        target=tenant,
        data={"rows": manifest["rows"], "members": len(manifest["members"]), "format_version": FORMAT_VERSION},
        chain=tenant.pk,
    )


def _chain_ids(tenant_id: int) -> dict:
    """The manifest's `audit`: the id the chain's hashes are computed under (its own, unless the
    chain was imported), every id it was stored under (its checkpoints signed there name it by one
    of them: this one, and those of the imports it came through), and per key id its checkpoints
    name, the public keys that signed them, as this platform finds them (the key an id names
    here need not be the one that signed a checkpoint imported from another platform; none: a key
    it does not know). An importing platform learns from them which keys it must trust to verify
    the chain; it does not trust them for being here (whoever holds the archive could write them)."""
    with rls_scope(tenant_id):
        base = audit_chain_base(tenant_id)
        ids, known = chain_ids(base), public_keys()
        keys: dict[str, set[str]] = {}
        for checkpoint in AuditCheckpoint.objects.filter(tenant_id=tenant_id).values(
            "seq", "hash", "signed_at", "key_id", "signature"
        ):
            signer = checkpoint_key(checkpoint, chain_ids=ids, hash_id=base.hash_tenant_id, keys=known)
            keys.setdefault(checkpoint["key_id"], set()).update([known[signer]] if signer else [])
    return {
        "hash_tenant_id": base.hash_tenant_id,
        "chain_ids": sorted({tenant_id, *(base.signed_as or ())}),
        "signing_keys": {key_id: sorted(publics) for key_id, publics in sorted(keys.items())},
    }


# --- verify -------------------------------------------------------------------------------------


@contextmanager
def _opened(file: BinaryIO | str | Path) -> Iterator[zipfile.ZipFile]:
    """The archive as a zip file; ArchiveError if it is none, or a truncated one."""
    with ExitStack() as stack:
        if isinstance(file, str | Path):
            try:
                file = stack.enter_context(open(file, "rb"))
            except OSError as e:
                raise ArchiveError("archive_unreadable", f"The archive cannot be read: {e.strerror}.") from None
        try:
            file.seek(0)
            head = file.read(4)
            file.seek(0)
        except (OSError, ValueError):  # a pipe, a terminal: a zip file is read from its end
            raise ArchiveError("archive_unreadable", "The archive must be a regular file (not a pipe).") from None
        try:
            archive = stack.enter_context(zipfile.ZipFile(file))
        except NotImplementedError as e:
            # zipfile's answer to an entry asking a zip version it does not read (above 6.3), which
            # no platform export writes: a crafted or damaged archive.
            raise ArchiveError("archive_damaged", f"The archive's table of contents is damaged ({e}).") from None
        except (zipfile.BadZipFile, EOFError, ValueError):
            if head == b"PK\x03\x04":
                raise ArchiveError(
                    "archive_truncated", "The archive is cut short: its table of contents is missing."
                ) from None
            raise ArchiveError("archive_not_an_archive", "This is not a workspace archive (not a zip file).") from None
        yield archive


def _member_read(archive: zipfile.ZipFile, name: str) -> Iterator[bytes]:
    """The member's bytes in chunks; ArchiveError naming it if it is damaged or missing."""
    try:
        with archive.open(name) as member:
            while chunk := member.read(CHUNK):
                yield chunk
    except KeyError:
        raise ArchiveError("archive_damaged", f"The archive has no member {name}.", member=name) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        raise ArchiveError("archive_damaged", f"Member {name} is damaged ({e}).", member=name) from None
    except (RuntimeError, NotImplementedError) as e:  # zipfile: encrypted, or compressed by an unknown method
        raise ArchiveError("archive_damaged", f"Member {name} cannot be read here ({e}).", member=name) from None


def _manifest_read(archive: zipfile.ZipFile) -> dict:
    data = bytearray()
    for chunk in _member_read(archive, MANIFEST):  # bounded: a small archive may inflate to gigabytes
        data += chunk
        if len(data) > MAX_MANIFEST_BYTES:
            raise ArchiveError(
                "archive_damaged", f"Member {MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes.", member=MANIFEST
            )
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ArchiveError("archive_damaged", f"Member {MANIFEST} is not valid JSON.", member=MANIFEST) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError("archive_damaged", f"Member {MANIFEST} is not a workspace archive's.", member=MANIFEST)
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ArchiveError("archive_damaged", f"Member {MANIFEST} has no format version.", member=MANIFEST)
    if version > FORMAT_VERSION:
        raise ArchiveError(
            "archive_format_newer",
            f"The archive has format version {version}; this platform reads up to {FORMAT_VERSION}.",
            member=MANIFEST,
        )
    if not _manifest_is_sound(manifest):
        raise ArchiveError("archive_damaged", f"Member {MANIFEST} is incomplete.", member=MANIFEST)
    return manifest


def _row_id(value) -> bool:
    """A value PostgreSQL keeps as a row's bigint id."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**63


def _manifest_is_sound(manifest: dict) -> bool:
    members, tenant, version = manifest.get("members"), manifest.get("tenant"), manifest.get("schema_version")
    if not (isinstance(members, list) and isinstance(tenant, dict) and isinstance(version, dict)):
        return False
    if not _row_id(tenant.get("id")) or not isinstance(tenant.get("name"), str):
        return False
    # Texts the import records in the platform's audit trail (`tenant.imported`): short, printable.
    for text in (tenant.get("slug"), manifest.get("created_at")):
        if text is not None and not (isinstance(text, str) and len(text) <= 100 and text.isprintable()):
            return False
    audit = manifest.get("audit", {})
    if not isinstance(audit, dict) or ("hash_tenant_id" in audit and not _row_id(audit["hash_tenant_id"])):
        return False
    chain_ids = audit.get("chain_ids", [])
    if not (isinstance(chain_ids, list) and len(chain_ids) <= 1000 and all(_row_id(i) for i in chain_ids)):
        return False
    keys = audit.get("signing_keys", {})
    if not (isinstance(keys, dict) and len(keys) <= MAX_SIGNING_KEYS):
        return False
    for key_id, publics in keys.items():  # recorded in the trail (tenant.imported): short, printable
        if not (len(key_id) <= KEY_ID_MAX and key_id.isprintable()):
            return False
        if not (isinstance(publics, list) and len(publics) <= MAX_SIGNING_KEYS):
            return False
        if not all(isinstance(public, str) and len(public) <= 100 and public.isprintable() for public in publics):
            return False
    for entry in members:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and (match := MEMBER_RE.match(entry["name"]))
            and match[2] not in EXCLUDED_TABLES  # never exported: an archive holding one was made by hand
            and isinstance(entry.get("rows"), int)
            and isinstance(entry.get("bytes"), int)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("columns"), list)
            and all(isinstance(c, str) for c in entry["columns"])
        ):
            return False
    names = [entry["name"] for entry in members]
    return len(names) == len(set(names)) and "public/tenants_tenant.ndjson" in names


def _versions_check(manifest: dict) -> None:
    """Refuse an archive of a schema newer than this platform's (migrations it has not applied)."""
    here = {"tenant": applied_migrations(settings.TENANT_BASE_SCHEMA), "public": applied_migrations("public")}
    for scope, apps in manifest["schema_version"].items():
        if scope not in here or not isinstance(apps, dict):
            raise ArchiveError(
                "archive_damaged", f"Member {MANIFEST} names an unknown schema {scope!r}.", member=MANIFEST
            )
        for app, names in apps.items():
            if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                message = f"Member {MANIFEST} lists {scope} migrations of {app!r} wrongly."
                raise ArchiveError("archive_damaged", message, member=MANIFEST)
            missing = [name for name in names if name not in here[scope].get(app, ())]
            if missing:
                raise ArchiveError(
                    "archive_schema_newer",
                    f"The archive comes from a newer schema: migration {app}.{missing[0]} is not applied here."
                    " Upgrade the platform first.",
                    member=MANIFEST,
                )


def _member_check(archive: zipfile.ZipFile, entry: dict) -> None:
    damaged = ArchiveError(
        "archive_damaged",
        f"Member {entry['name']} does not match its checksum in the manifest (damaged or altered).",
        member=entry["name"],
    )
    digest, rows, size = hashlib.sha256(), 0, 0
    for chunk in _member_read(archive, entry["name"]):
        size += len(chunk)
        if size > entry["bytes"]:  # read no further than the manifest says there is: a small
            raise damaged  # member may inflate to gigabytes
        digest.update(chunk)
        rows += chunk.count(b"\n")
    if (digest.hexdigest(), rows, size) != (entry["sha256"], entry["rows"], entry["bytes"]):
        raise damaged


def archive_verify(file: BinaryIO | str | Path) -> dict:
    """The archive's manifest, once every member matches it; ArchiveError (naming the member at
    fault) for a damaged, altered, truncated or newer archive. Reads only; writes nothing."""
    with _opened(file) as archive:
        manifest = _manifest_read(archive)
        _versions_check(manifest)
        listed = {entry["name"] for entry in manifest["members"]} | {MANIFEST}
        for name in archive.namelist():
            if name not in listed:
                raise ArchiveError(
                    "archive_damaged", f"Member {name} is not listed in the manifest (altered).", member=name
                )
        for entry in manifest["members"]:
            _member_check(archive, entry)
    return manifest


# --- import -------------------------------------------------------------------------------------


def _target_check(manifest: dict, *, slug: str, name: str | None) -> tuple[str, str]:
    slug = (slug or "").strip()
    try:
        tenant_slug_validate(slug)
    except ValidationError as e:
        raise ArchiveError(e.error_list[0].code or "slug_invalid", " ".join(e.messages)) from None
    if (
        Tenant.objects.filter(slug=slug).exists()
        or schema_is_present(schema_name_for_slug(slug))
        or Domain.objects.filter(domain=tenant_domain_for_slug(slug)).exists()
    ):
        raise ArchiveError("slug_taken", f"“{slug}” is already taken.")
    name = (name or "").strip() or manifest["tenant"]["name"]
    if not isinstance(name, str) or tenant_name_problem(name) is not None:
        raise ArchiveError("name_invalid", "A name has 1 to 200 characters and no control characters.")
    return slug, name.strip()


_KEYS_SQL = """
    SELECT format('%%I.%%I', n.nspname, c.relname), k.conname, pg_get_constraintdef(k.oid), k.contype
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE (k.conrelid = %(table)s::regclass AND k.contype IN ('p', 'u', 'f', 'x'))
        OR (k.confrelid = %(table)s::regclass AND k.contype = 'f')
"""
_INDEXES_SQL = """
    SELECT format('%%I.%%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.indrelid = %(table)s::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
"""


@contextmanager
def _bulk_load(cursor, table: Table, unchecked: list[tuple[str, str]]) -> Iterator[None]:
    """Load a large table as pg_restore does: without its indexes and keys, built again after the
    rows in one pass each. Foreign keys come back NOT VALID and are added to `unchecked`: the
    tables they point at may load later (cycles), so they are validated — one query each,
    instead of once per row — after every table (`_foreign_keys_validate`)."""
    cursor.execute(_KEYS_SQL, {"table": table.qualified})
    keys = cursor.fetchall()
    cursor.execute(_INDEXES_SQL, {"table": table.qualified})
    indexes = cursor.fetchall()
    foreign_first = sorted(keys, key=lambda key: key[3] != "f")  # foreign keys drop first, come back last
    # Checks still pending on the tables (rows loaded before) would forbid altering them: run them now.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    for owner, name, _, _ in foreign_first:
        cursor.execute(f"ALTER TABLE {owner} DROP CONSTRAINT {_quoted(name)}")
    for index, _ in indexes:
        cursor.execute(f"DROP INDEX {index}")
    yield
    for _, definition in indexes:
        cursor.execute(definition)
    for owner, name, definition, kind in reversed(foreign_first):
        if kind == "f":
            cursor.execute(f"ALTER TABLE {owner} ADD CONSTRAINT {_quoted(name)} {definition} NOT VALID")
            unchecked.append((owner, name))
        else:
            cursor.execute(f"ALTER TABLE {owner} ADD CONSTRAINT {_quoted(name)} {definition}")


def _foreign_keys_validate(cursor, unchecked: list[tuple[str, str]]) -> None:
    for owner, name in unchecked:
        with _rows_of(f"the archive ({owner})"):
            cursor.execute(f"ALTER TABLE {owner} VALIDATE CONSTRAINT {_quoted(name)}")
    unchecked.clear()


@contextmanager
def _rows_of(name: str) -> Iterator[None]:
    """A row its table refuses (a wrong type, a missing value, JSON nested deeper than
    PostgreSQL parses): ArchiveError naming the member. Its checksum matched, so the archive is
    whole, but it was not made by this platform."""
    try:
        yield
    except (DataError, IntegrityError, OperationalError, psycopg.DataError, psycopg.IntegrityError, *ROW_TOO_MUCH) as e:
        if isinstance(e, OperationalError) and not isinstance(e.__cause__, ROW_TOO_MUCH):
            raise
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member {name} holds a row its table refuses: {str(e).splitlines()[0]}",
            member=name,
        ) from None


class _Staging:
    """Large members parsed ahead, in parallel, while the import's transaction creates the schema.

    Parsing JSON is most of an import's time, and it needs only the row types of the base schema.
    So the large members of the new schema's own tables (no ids to map) are read once (their
    checksums checked again), each one's rows split in order among PARSERS connections of their
    own, and parsed by all at once into UNLOGGED tables of a staging schema `_import_<hex>`. The
    import's transaction then takes the rows from there in one INSERT … SELECT (`rows_take`) and
    drops the staging schema itself, so a committed import leaves none behind. On failure the
    staging schema is dropped here (`__exit__`). A process killed mid-import leaves at most its
    staging schema: the next import drops it (`_staging_sweep`; an advisory lock tells the live
    ones from the orphans)."""

    def __init__(self, archive: zipfile.ZipFile, manifest: dict):
        self.archive = archive
        self.members = {entry["name"]: entry for entry in manifest["members"]}
        self.schema = STAGING_PREFIX + secrets.token_hex(6)
        self.connections: list[psycopg.Connection] = []
        self.staged: dict[str, Future] = {}
        self.stopping = threading.Event()

    def __enter__(self) -> "_Staging":
        plan = self._plan()
        if not plan:
            return self
        try:
            params = connection.get_connection_params()
            self.connections = [psycopg.connect(**params, autocommit=True) for _ in range(PARSERS)]
            first = self.connections[0]
            _staging_sweep(first)
            first.execute("SELECT pg_advisory_lock(hashtext(%s))", [self.schema])  # held until __exit__
            first.execute(f"CREATE SCHEMA {_quoted(self.schema)}")
            for table, _ in plan.values():
                first.execute(f"CREATE UNLOGGED TABLE {self._staged(table)} (LIKE {table.qualified})")
            # One reader streams the members in turn; each one's shares are parsed at once.
            self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-read")
            self.shares = ThreadPoolExecutor(max_workers=PARSERS, thread_name_prefix="archive-parse")
            for name, (table, columns) in plan.items():
                self.staged[name] = self.reader.submit(self._parse, name, table, columns)
        except BaseException:
            self.__exit__(True, None, None)
            raise
        return self

    def __exit__(self, failed, *exc) -> None:
        if not self.connections:
            return
        if failed:
            self.stopping.set()
            for conn in self.connections:
                conn.cancel_safe()  # a parse still running is of no use now
        if self.staged:
            self.reader.shutdown(wait=True, cancel_futures=True)
            self.shares.shutdown(wait=True, cancel_futures=True)
        try:
            if failed:  # the import's transaction rolled back, and its drop of the schema with it
                self.connections[0].execute(f"DROP SCHEMA IF EXISTS {_quoted(self.schema)} CASCADE")
        finally:
            for conn in self.connections:
                conn.close()

    def _plan(self) -> dict[str, tuple[Table, list[str]]]:
        base = settings.TENANT_BASE_SCHEMA
        mapped = {table for table, _, _ in _reference_columns(base)}
        plan = {}
        for table in schema_tables(base):
            entry = self.members.get(f"schema/{table.name}.ndjson")
            if entry and entry["rows"] >= BULK_ROWS and table.name not in mapped:
                plan[entry["name"]] = (table, [c for c in stored_columns(table) if c in entry["columns"]])
        return plan

    def _staged(self, table: Table) -> str:
        return f"{_quoted(self.schema)}.{_quoted(table.name)}"

    def _parse(self, name: str, table: Table, columns: list[str]) -> None:
        """Member `name`'s rows into its staging table. Read once here, its checksum checked again
        (changed since it was verified?); its rows shared, in order, among the connections, each
        of which copies its lines in as they come and then parses them (`_share`)."""
        listed = ", ".join(map(_quoted, columns))
        parse = (
            f"INSERT INTO {self._staged(table)} ({listed}) SELECT {', '.join('r.' + _quoted(c) for c in columns)}"
            f" FROM archive_lines, json_populate_record(NULL::{table.qualified}, j) AS r"
        )
        rows, count = self.members[name]["rows"], len(self.connections)
        bounds = [(number * rows // count, (number + 1) * rows // count) for number in range(count)]
        lines = [queue.Queue(maxsize=64) for _ in self.connections]  # at most 64 chunks (MB) waiting each
        pairs = zip(self.connections, lines, strict=True)
        shares = [self.shares.submit(self._share, conn, share, parse, name) for conn, share in pairs]
        digest, seen, beyond = hashlib.sha256(), 0, 0
        try:
            for chunk in _member_read(self.archive, name):
                digest.update(chunk)
                for (first, last), share, future in zip(bounds, lines, shares, strict=True):
                    start, end = _line_end(chunk, first - seen), _line_end(chunk, last - seen)
                    if start < end:
                        self._put(share, chunk[start:end], future)
                beyond += len(chunk) - _line_end(chunk, rows - seen)
                seen += chunk.count(b"\n")
        except BaseException:
            self.stopping.set()  # the import fails: no share is to parse what it was given so far
            raise
        finally:
            for share, future in zip(lines, shares, strict=True):
                self._put(share, None, future)  # the end of its lines
        for future in shares:
            future.result()
        if digest.hexdigest() != self.members[name]["sha256"]:
            raise ArchiveError("archive_damaged", f"Member {name} changed while being imported.", member=name)
        if beyond:  # bytes after the last counted line: not rows the manifest counted
            raise ArchiveError("archive_damaged", f"Member {name} did not load whole.", member=name)

    def _put(self, share: queue.Queue, item: bytes | None, future: Future) -> None:
        """Hand `item` to a share, unless it stopped (failed, or the import is being abandoned)."""
        while not (future.done() or self.stopping.is_set()):
            try:
                share.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _share(self, conn: psycopg.Connection, lines: queue.Queue, parse: str, name: str) -> None:
        """Copy in the lines handed over, as they come, then parse them all."""
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS archive_lines (j json)")
        conn.execute("TRUNCATE archive_lines")
        with conn.cursor().copy(f"COPY archive_lines (j) FROM STDIN {RAW_LINES}") as copy:
            while (chunk := self._get(lines)) is not None:
                copy.write(chunk)
        if not self.stopping.is_set():
            with _rows_of(name):
                conn.execute(parse)

    def _get(self, lines: queue.Queue) -> bytes | None:
        """The next lines handed over; None at their end, or once the import is abandoned."""
        while not self.stopping.is_set():
            try:
                return lines.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def rows_take(self, name: str, target: Table, columns: list[str], cursor) -> int | None:
        """INSERT member `name`'s staged rows into `target` (the `columns` given) on the import's
        own connection; None if the member was not staged."""
        future = self.staged.get(name)
        if future is None:
            return None
        future.result()
        listed = ", ".join(map(_quoted, columns))
        staged = self._staged(Table(self.schema, target.name))
        cursor.execute(
            f"INSERT INTO {target.qualified} ({listed}) OVERRIDING SYSTEM VALUE SELECT {listed} FROM {staged}"
        )
        return cursor.rowcount

    def drop(self, cursor) -> None:
        """Drop the staging schema in the import's transaction: gone when it commits."""
        if self.connections:
            cursor.execute(f"DROP SCHEMA {_quoted(self.schema)} CASCADE")


def _line_end(data: bytes, lines: int) -> int:
    """The offset just past the `lines`-th newline in `data` (0 for none); its length if it has
    fewer newlines."""
    if lines <= 0:
        return 0
    count = data.count(b"\n")
    if count <= lines:
        return data.rindex(b"\n") + 1 if count == lines else len(data)
    end = 0
    for _ in range(lines):
        end = data.index(b"\n", end) + 1
    return end


def _staging_sweep(conn: psycopg.Connection) -> None:
    """Drop the staging schemas of imports that are no longer running (killed mid-way).

    A running import holds its schema's advisory lock; one whose transaction dropped its schema
    and has not ended yet (inside a caller's transaction) still locks it: skipped, not waited for."""
    conn.execute("SET lock_timeout = '200ms'")
    try:
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", [STAGING_PREFIX]
        ).fetchall():
            if conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [schema]).fetchone()[0]:
                try:
                    conn.execute(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE")
                except psycopg.errors.LockNotAvailable:
                    pass
                finally:
                    conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", [schema])
    finally:
        conn.execute("RESET lock_timeout")


class _Loader:
    """Loads verified members into the new workspace, each through a temporary table of lines.

    A member's lines are copied as they are into archive_lines (COPY: no quoting, no parsing),
    then one INSERT … SELECT per member makes rows of them with json_populate_record: the
    server parses each line once, into the target table's own row type."""

    def __init__(
        self, archive: zipfile.ZipFile, manifest: dict, tenant: Tenant, progress: Progress | None, staging: _Staging
    ):
        self.archive = archive
        self.staging = staging
        self.members = {entry["name"]: entry for entry in manifest["members"]}
        self.tenant = tenant
        self.progress = progress
        self.total = manifest["rows"] if isinstance(manifest.get("rows"), int) else 0
        self.sequences = manifest.get("sequences") or {}  # where the source's sequences stood (none before)
        self.done = 0
        self.cursor = connection.cursor()
        self.unchecked: list[tuple[str, str]] = []  # foreign keys put back NOT VALID by _bulk_load
        # json, not text: each line checked as it is copied in; not jsonb, which would parse
        # each line into a binary document first, only to be taken apart again.
        self.cursor.execute("CREATE TEMP TABLE archive_lines (j json) ON COMMIT DROP")

    def lines_load(self, name: str) -> None:
        """Put member `name`'s lines in archive_lines, checking its checksum again on the way."""
        entry = self.members[name]
        self.cursor.execute("TRUNCATE archive_lines")
        digest = hashlib.sha256()
        with self.cursor.cursor.copy(f"COPY archive_lines (j) FROM STDIN {RAW_LINES}") as copy:
            for chunk in _member_read(self.archive, name):
                digest.update(chunk)
                copy.write(chunk)
        if digest.hexdigest() != entry["sha256"]:  # changed since it was verified
            raise ArchiveError("archive_damaged", f"Member {name} changed while being imported.", member=name)

    def insert(
        self, name: str, table: Table, *, replace: dict[str, str] | None = None, skip=frozenset(), own: bool = False
    ) -> int:
        """INSERT the member's rows into `table`: the columns both have, `replace`d by SQL values.
        `own`: the table is the new schema's, which no one else uses yet, so a large member may
        load without its indexes and keys (never a shared public table: that would lock it)."""
        entry = self.members.get(name)
        if entry is None or not entry["rows"]:
            return 0
        replace = replace or {}
        here = stored_columns(table)
        columns = [c for c in here if (c in entry["columns"] and c not in skip) or c in replace]
        values = [replace.get(c, f"r.{_quoted(c)}") for c in columns]
        bulk = own and table.schema == self.tenant.schema_name and entry["rows"] >= BULK_ROWS
        with _rows_of(name), _bulk_load(self.cursor, table, self.unchecked) if bulk else nullcontext():
            loaded = self.staging.rows_take(name, table, columns, self.cursor) if bulk and not replace else None
            if loaded is None:
                self.lines_load(name)
                self.cursor.execute(
                    f"INSERT INTO {table.qualified} ({', '.join(map(_quoted, columns))})"
                    f" OVERRIDING SYSTEM VALUE SELECT {', '.join(values)}"
                    f" FROM archive_lines l, json_populate_record(NULL::{table.qualified}, l.j) AS r"
                )
                loaded = self.cursor.rowcount
        if loaded != entry["rows"]:
            raise ArchiveError("archive_damaged", f"Member {name} did not load whole.", member=name)
        self.done += loaded
        if self.progress:
            self.progress(self.done, self.total)
        return loaded


def _references_map(loader: _Loader, schema: str) -> dict[str, str]:
    """SQL that maps the archive's content type and permission ids to this schema's, by natural key
    (they are created by migrations, so their ids may differ between platforms)."""
    cursor = loader.cursor
    cursor.execute("CREATE TEMP TABLE archive_ct (old int, new int) ON COMMIT DROP")
    cursor.execute("CREATE TEMP TABLE archive_perm (old int, new int) ON COMMIT DROP")
    types, permissions = "reference/django_content_type.ndjson", "reference/auth_permission.ndjson"
    if types in loader.members:
        with _rows_of(types):
            loader.lines_load(types)
            cursor.execute(
                f"INSERT INTO archive_ct SELECT (l.j->>'id')::int, c.id FROM archive_lines l"
                f" JOIN {_quoted(schema)}.django_content_type c"
                " ON c.app_label = l.j->>'app_label' AND c.model = l.j->>'model'"
            )
    if permissions in loader.members:
        with _rows_of(permissions):
            loader.lines_load(permissions)
            cursor.execute(
                f"INSERT INTO archive_perm SELECT (l.j->>'id')::int, p.id FROM archive_lines l"
                f" JOIN archive_ct m ON m.old = (l.j->>'content_type_id')::int"
                f" JOIN {_quoted(schema)}.auth_permission p ON p.content_type_id = m.new"
                " AND p.codename = l.j->>'codename'"
            )
    return {
        f"{table}.{column}": f"(SELECT m.new FROM {'archive_ct' if target == 'django_content_type' else 'archive_perm'}"
        f" m WHERE m.old = r.{_quoted(column)})"
        for table, column, target in _reference_columns(schema)
    }


def _reference_columns(schema: str) -> list[tuple[str, str, str]]:
    """(table, column, reference table) of the schema's columns that point at REFERENCE_TABLES."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cl.relname, a.attname, pc.relname FROM pg_constraint k"
            " JOIN pg_class cl ON cl.oid = k.conrelid JOIN pg_class pc ON pc.oid = k.confrelid"
            " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
            " WHERE k.contype = 'f' AND cl.relnamespace = %s::regnamespace AND pc.relname = ANY (%s)",
            [schema, list(REFERENCE_TABLES)],
        )
        return cursor.fetchall()


_SEQUENCES_SQL = (
    "SELECT c.relname, a.attname, pg_get_serial_sequence(format('%%I.%%I', n.nspname, c.relname), a.attname)"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
)


def _sequences_read(schema: str) -> dict[str, int]:
    """Where each sequence of the schema stands: `table.column` → the next value it gives. The
    copy goes on from there: an id the source gave and deleted since (an erased member's, whose
    `user:<id>` the trail keeps) is not given to someone else in the copy."""
    positions = {}
    with connection.cursor() as cursor:
        cursor.execute(_SEQUENCES_SQL, [schema])
        for table, column, sequence in cursor.fetchall():
            if sequence:
                # `sequence` is the catalog's name, quoted by pg_get_serial_sequence. Added up here:
                # a bigint sequence that gave its last value would overflow the sum in SQL.
                cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
                last, called = cursor.fetchone()
                positions[f"{table}.{column}"] = last + int(called)
    return positions


def _sequences_reset(schema: str, positions: dict) -> None:
    """Move every sequence of the schema past the largest id loaded, and to where the source's
    stood (`positions`, from the archive: an older one has none). Both within the first half of
    the sequence's range: the platform's own ids never come near it, and a crafted archive at
    its end left the copy one id to give (the next member added failed: nextval's maximum). A
    position past it is not taken (the largest id decides); ids past it are refused."""
    with connection.cursor() as cursor:
        cursor.execute(_SEQUENCES_SQL, [schema])
        for table, column, sequence in cursor.fetchall():
            if not sequence:
                continue
            cursor.execute(
                f"SELECT max({_quoted(column)}), (SELECT seqmax FROM pg_sequence WHERE seqrelid = %s::regclass)"
                f" FROM {Table(schema, table).qualified}",
                [sequence],
            )
            largest, maximum = cursor.fetchone()
            room = maximum // 2
            if largest is not None and largest > room:
                member = f"schema/{table}.ndjson"
                raise ArchiveError(
                    "archive_rows_invalid",
                    f"Member {member}: {column} reaches {largest}, past {room}: no room for the rows to come.",
                    member=member,
                )
            position = positions.get(f"{table}.{column}") if isinstance(positions, dict) else None
            if not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= room:
                position = 1
            cursor.execute("SELECT setval(%s, %s, false)", [sequence, max((largest or 0) + 1, position)])


# The times an archive's rows may hold: Python's dates end with the year 9999 (PostgreSQL's go
# on, and take `infinity`), and a year of room before it is kept for what is reckoned from a
# stored time (an invitation's next issue moment, an expiry). A row past it failed every read
# (the member list: `timestamp too large`); one at its very end, the next invitation link.
_TIME_BOUNDS = ("0001-01-02 00:00:00+00", "9999-01-01 00:00:00+00")


def _times_check(schema: str, tenant: Tenant) -> None:
    """No date or time in the copy's rows (its schema's, and its rows of the public tables)
    outside _TIME_BOUNDS: archive_rows_invalid naming the member and the column."""
    owned = {table.name for table in public_tenant_tables()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name, array_agg(column_name::text ORDER BY column_name)"
            " FROM information_schema.columns c WHERE table_schema IN (%s, 'public')"
            " AND data_type IN ('date', 'timestamp with time zone', 'timestamp without time zone')"
            " AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = c.table_schema"
            " AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE')"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            [schema],
        )
        for where, table, columns in cursor.fetchall():
            if where == "public" and table not in owned:
                continue
            outside = [f"NOT ({_quoted(c)} BETWEEN %(first)s AND %(last)s)" for c in columns]
            scope = " AND tenant_id = %(tenant)s" if where == "public" else ""
            cursor.execute(
                f"SELECT {', '.join(outside)} FROM {_quoted(where)}.{_quoted(table)}"
                f" WHERE ({' OR '.join(outside)}){scope} LIMIT 1",
                {"first": _TIME_BOUNDS[0], "last": _TIME_BOUNDS[1], "tenant": tenant.pk},
            )
            row = cursor.fetchone()
            if row is not None:
                column = next(c for c, bad in zip(columns, row, strict=True) if bad)
                member = f"{'schema' if where == schema else 'public'}/{table}.ndjson"
                raise ArchiveError(
                    "archive_rows_invalid",
                    f"Member {member}: {column} holds a time outside the years 1 to 9998.",
                    member=member,
                )


def _tenant_settings_apply(loader: _Loader, tenant: Tenant, *, keep_networks: bool) -> list[str]:
    """The archive's plan, limit overrides and trace setting on the new tenant, saved (its model
    history records them, as an operator's change is recorded), and its private networks when
    `keep_networks`. Which networks the archive allowed is returned: not kept, they are left for
    an operator to grant. An archive is its workspace owners' to download and edit, and
    another platform's networks are not this one's: a private address here may be the
    platform's own (its database, its Redis)."""
    entry = loader.members["public/tenants_tenant.ndjson"]
    columns = [c for c in TENANT_SETTINGS if c in entry["columns"]]
    if entry["rows"] != 1 or not columns:
        return []
    loader.lines_load("public/tenants_tenant.ndjson")
    loader.cursor.execute(  # typed as the columns type them
        f"SELECT {', '.join('r.' + _quoted(c) for c in columns)}"
        " FROM archive_lines, json_populate_record(NULL::public.tenants_tenant, archive_lines.j) AS r"
    )
    for column, value in zip(columns, loader.cursor.fetchone(), strict=True):
        setattr(tenant, column, value)
    # Values its columns take but the platform would choke on later (every http tool, SSO
    # discovery, provider and sink delivery reads the networks; every request its limits), or
    # that only an operator may set (every address for http tools): refused as the archive's.
    member = "public/tenants_tenant.ndjson"
    try:
        if not isinstance(tenant.http_allowed_networks, list):
            raise ServiceError("network_invalid", "http_allowed_networks is no list of networks.")
        # Kept as the operator's form saves them (" 10.0.0.0/8\n" is no CIDR).
        archived = http_networks_clean(tenant.http_allowed_networks)
    except ServiceError as exc:
        raise ArchiveError("archive_rows_invalid", f"Member {member}: {exc.message}", member=member) from None
    tenant.http_allowed_networks = archived if keep_networks else []
    for name in LIMIT_NAMES:
        value = getattr(tenant, f"{name}_override")
        if value is not None and (problem := limit_problem(name, value)):
            raise ArchiveError("archive_rows_invalid", f"Member {member}: {problem}", member=member)
    if tenant.plan not in Tenant.Plan.values:
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member public/tenants_tenant.ndjson names an unknown plan {tenant.plan!r}.",
            member="public/tenants_tenant.ndjson",
        )
    tenant.save(update_fields=columns)
    return [] if keep_networks else archived


_HOSTNAME = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _domain_attachable(domain: object) -> bool:
    """Whether a custom domain of an archive comes along: one outside the platform's base domain.
    The names under it are the platform's to give (workspaces' slugs, reserved names such as www,
    login, sso): an archive naming one would take a platform-looking host for its sign-in page, or
    the host of a workspace not yet created; an address, or a host the platform answers on itself,
    is not a workspace's either. A row that is no lowercase host name is refused."""
    if not isinstance(domain, str) or not _HOSTNAME.fullmatch(domain):
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member public/tenants_domain.ndjson holds a domain that is no host name: {str(domain)[:100]!r}",
            member="public/tenants_domain.ndjson",
        )
    base = settings.FOUNDRY_BASE_DOMAIN.lower()
    if domain == base or domain.endswith(f".{base}"):
        return False
    if domain.rpartition(".")[2].isdigit():  # an address (no top-level domain is a number)
        return False
    # A host the platform answers on beside its base domain (FOUNDRY_EXTRA_ALLOWED_HOSTS; ".x" is x
    # and every name under it, as in ALLOWED_HOSTS).
    for host in (h.lower() for h in settings.FOUNDRY_EXTRA_ALLOWED_HOSTS):
        if domain == host.lstrip(".") or (host.startswith(".") and domain.endswith(host)) or host == "*":
            return False
    return True


def _domains_attach(loader: _Loader, tenant: Tenant) -> list[str]:
    """Re-attach the archive's other (custom) domains that are free here and not the platform's;
    the ones left behind."""
    entry = loader.members.get("public/tenants_domain.ndjson")
    if entry is None or not entry["rows"]:
        return []
    loader.lines_load("public/tenants_domain.ndjson")
    loader.cursor.execute("SELECT j->>'domain' FROM archive_lines WHERE NOT (j->>'is_primary')::boolean")
    left = []
    for (domain,) in loader.cursor.fetchall():
        if not _domain_attachable(domain) or Domain.objects.filter(domain=domain).exists():
            left.append(domain)
            continue
        try:
            with transaction.atomic():  # taken by another import at the same moment: left behind too
                Domain.objects.create(domain=domain, tenant=tenant, is_primary=False)
        except IntegrityError:
            left.append(domain)
    return left


def _tenant_create(slug: str, name: str) -> Tenant:
    """The tenant row, its schema (fully migrated, still empty of data) and its primary domain."""
    connection.set_schema_to_public()
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(schema_name=schema_name_for_slug(slug), slug=slug, name=name)
    except IntegrityError:  # the same slug, taken concurrently, committed first
        raise ArchiveError("slug_taken", f"“{slug}” is already taken.") from None
    schema_create(tenant.schema_name)
    Domain.objects.create(domain=tenant_domain_for_slug(slug), tenant=tenant, is_primary=True)
    return tenant


# Data migrations whose rewrite of rows a workspace's rows need (the schema they are loaded into
# has them applied; an archive made before them holds its rows as they were): addresses and the
# SSO settings in one spelling, U-labels (a member kept as pat@xn--bcher-kva.test could not sign
# in to the copy, nor its break-glass owner while SSO is required).
_ROW_FIXUPS = (("accounts", "0003_email_domain_spelling"), ("identity", "0004_setting_spellings"))


def _row_fixups(schema: str, made_with: dict) -> None:
    """Rewrite the workspace's rows (in `schema`) as each data migration of _ROW_FIXUPS the archive
    was made without (`made_with`: its tenant migrations) would have."""
    from django.apps import apps as registry

    for app, name in _ROW_FIXUPS:
        if name not in made_with.get(app, ()):
            with schema_context(schema):
                importlib.import_module(f"apps.{app}.migrations.{name}").forwards(registry, None)


def _schema_load(loader: _Loader, schema: str) -> None:
    remap = _references_map(loader, schema)
    tables = [t for t in schema_tables(schema) if f"schema/{t.name}.ndjson" in loader.members]
    with connection.cursor() as cursor:
        for table in tables:  # rows the schema's creation seeded (a default policy) give way to the archive's
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table.qualified})")
            if cursor.fetchone()[0]:
                cursor.execute(f"DELETE FROM {table.qualified}")
    for table in tables:
        replace = {k.split(".", 1)[1]: v for k, v in remap.items() if k.split(".", 1)[0] == table.name}
        loader.insert(f"schema/{table.name}.ndjson", table, replace=replace, own=True)
    _foreign_keys_validate(loader.cursor, loader.unchecked)
    with _rows_of("the archive"):  # an id at its column's largest value leaves its sequence nowhere to go
        _sequences_reset(schema, loader.sequences)
    _retention_policy_check(schema)
    _catalog_numbers_check(schema)
    _json_depth_check(schema)
    # Whatever the archive holds (one written before tokens were exported revoked, say), the
    # copy's API tokens start revoked: a bearer token of the source must not open it.
    # Nor is any member of it staff: that means a platform operator, and only in the public
    # schema (an archive is checksummed, not signed: `is_staff` in it would make a member one in
    # the platform's audit trail).
    # A member with no password to sign in with (an admin's export holds none) and no single
    # sign-on identity has not joined the copy, however often they signed in to the source: an
    # admin may send them an invitation to set one (accounts: `has_joined`), as docs/export.md says.
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_quoted(schema)}.tokens_apitoken SET revoked_at = now() WHERE revoked_at IS NULL")
        # Runs under way in the source are not resumed in the copy: the source goes on with them,
        # and the copy taking them on too would make their tool calls a second time (an approval
        # given in each). They end `cancelled` (reason `imported`), their pending approvals closed.
        under_way = [Run.Status.QUEUED, Run.Status.RUNNING, Run.Status.WAITING_APPROVAL]
        cursor.execute(
            f"UPDATE {_quoted(schema)}.runs_approval AS a SET decision = %s, decided_at = now()"
            f" FROM {_quoted(schema)}.runs_run AS r WHERE a.run_id = r.id AND a.decision = %s AND r.status = ANY(%s)",
            [Approval.Decision.CANCELLED, Approval.Decision.PENDING, under_way],
        )
        cursor.execute(
            f"UPDATE {_quoted(schema)}.runs_run SET status = %s, reason = 'imported', message = %s,"
            " finished_at = now(), updated_at = now() WHERE status = ANY(%s)",
            [Run.Status.CANCELLED, IMPORTED_RUN_MESSAGE, under_way],
        )
        cursor.execute(f"UPDATE {_quoted(schema)}.accounts_user SET is_staff = false WHERE is_staff")
        cursor.execute(
            f"UPDATE {_quoted(schema)}.accounts_user AS u SET last_login = NULL"
            " WHERE u.last_login IS NOT NULL AND u.password LIKE %s"
            f" AND NOT EXISTS (SELECT 1 FROM {_quoted(schema)}.identity_externalidentity AS i WHERE i.user_id = u.id)",
            [f"{UNUSABLE_PASSWORD_PREFIX}%"],
        )
        # A member yet to join whose invitation was issued before issues were recorded: a new
        # issue here, so that no link of the source opens the copy (invitation links are bound
        # to the workspace through `invited_at`); an admin sends them the copy's own.
        cursor.execute(
            f"UPDATE {_quoted(schema)}.accounts_user SET invited_at = now()"
            " WHERE invited_at IS NULL AND last_login IS NULL AND password LIKE %s",
            [f"{UNUSABLE_PASSWORD_PREFIX}%"],
        )


def _retention_policy_check(schema: str) -> None:
    """The archive's retention policy, judged as `retention_policy_set` judges one: its columns
    take values (0 days, a million) the platform never sets and a retention pass cannot apply."""
    from apps.lifecycle.retention import FIELDS, retention_policy_clean

    member = "schema/lifecycle_retentionpolicy.ndjson"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(FIELDS)} FROM {_quoted(schema)}.lifecycle_retentionpolicy")
        rows = cursor.fetchall()
    for row in rows:
        try:
            retention_policy_clean(dict(zip(FIELDS, row, strict=True)))
        except ValidationError as e:
            problems = "; ".join(m for messages in e.message_dict.values() for m in messages)
            raise ArchiveError(
                "archive_rows_invalid",
                f"Member {member} holds a retention policy the platform refuses: {problems}",
                member=member,
            ) from None


def _catalog_numbers_check(schema: str) -> None:
    """Every document's versions numbered 1..n and its counter at n, as publishing keeps them: the
    next publish takes the counter's next number, which a counter behind its versions would take
    again (refused by their unique key, for good) and one ahead would leave a gap."""
    member = "schema/catalog_document.ndjson"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.kind, d.name FROM {_quoted(schema)}.catalog_document d"
            f" LEFT JOIN {_quoted(schema)}.catalog_version v ON v.document_id = d.id GROUP BY d.id"
            " HAVING d.latest_number <> count(v.id) OR coalesce(max(v.number), 0) <> count(v.id)"
            " OR coalesce(min(v.number), 1) <> 1"
            " ORDER BY d.kind, d.name LIMIT 1"
        )
        row = cursor.fetchone()
    if row is not None:
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member {member}: the {row[0]} {row[1]!r} does not count its versions 1 to n as publishing does.",
            member=member,
        )


def _json_depth_check(schema: str) -> None:
    """No JSON value nested deeper than MAX_JSON_DEPTH: PostgreSQL takes a few thousand levels,
    Python's decoder about a thousand, so every later read of such a row (the sign-in page reading
    the SSO settings, a run page) would fail. The platform itself writes far shallower values."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND data_type IN ('json', 'jsonb') ORDER BY 1, 2",
            [schema],
        )
        for table, column in cursor.fetchall():
            value = f"{_quoted(column)}::jsonb"
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {_quoted(schema)}.{_quoted(table)}"
                f" WHERE jsonb_path_exists({value}, %s))",
                [f"strict $.**{{{MAX_JSON_DEPTH}}}"],
            )
            if cursor.fetchone()[0]:
                member = f"schema/{table}.ndjson"
                raise ArchiveError(
                    "archive_rows_invalid",
                    f"Member {member}: {column} holds JSON nested deeper than {MAX_JSON_DEPTH} levels.",
                    member=member,
                )


@contextmanager
def _pruned_refused(name: str) -> Iterator[None]:
    """A trail that retention pruned holds `audit.pruned` events, which the events' Row-Level
    Security lets the trail's owner role alone write (audit migration 0016): the app role, which
    imports, is refused them. Refused as such (it was a ProgrammingError: a 500 on the operator's
    import page), until an owner's import of the marker exists (docs/export.md)."""
    try:
        yield
    except ProgrammingError as error:
        if getattr(error.__cause__, "sqlstate", None) != "42501":  # insufficient_privilege: the policy
            raise
        raise ArchiveError(
            "archive_trail_pruned",
            "The workspace's audit trail was pruned by retention; a pruned trail cannot be imported yet "
            "(its audit.pruned markers are written by the database owner only).",
            member=name,
        ) from None


def _public_load(loader: _Loader, tenant: Tenant) -> None:
    from apps.audit.delivery import MAX_SINKS, sinks_imported_problem

    new_id = str(int(tenant.pk))
    for table in public_tenant_tables():
        if table.name == "tenants_domain":
            continue
        name = f"public/{table.name}.ndjson"
        with _pruned_refused(name) if table.name == "audit_auditevent" else nullcontext():
            if loader.insert(name, table, replace={"tenant_id": new_id}, skip=_generated_keys(table)):
                _history_follow(loader, table, tenant)
    with rls_scope(tenant.pk):
        sinks = AuditSink.objects.filter(tenant_id=tenant.pk).count()
    if sinks > MAX_SINKS:
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member public/audit_auditsink.ndjson holds {sinks} audit sinks; a workspace has at most {MAX_SINKS}.",
            member="public/audit_auditsink.ndjson",
        )
    # Held to the rules every sink is: a name no sink may have could be managed by no one (every
    # lookup finds none by it), credentials in a URL, a cursor past the chain's head.
    if problem := sinks_imported_problem(tenant):
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member public/audit_auditsink.ndjson: {problem}",
            member="public/audit_auditsink.ndjson",
        )


def _history_keyed(table: Table) -> tuple[type[models.Model], list[str]] | None:
    """The model of a public table whose changes have a history (django-auditlog), and the
    columns that name one of its rows within a workspace (its unique constraint with tenant_id)."""
    for model in django_apps.get_models():
        if model._meta.db_table != table.name or not auditlog.contains(model):
            continue
        for constraint in model._meta.constraints:
            unique = isinstance(constraint, models.UniqueConstraint) and constraint.condition is None
            if unique and "tenant_id" in constraint.fields:
                return model, [model._meta.get_field(f).column for f in constraint.fields if f != "tenant_id"]
    return None


def _history_follow(loader: _Loader, table: Table, tenant: Tenant) -> None:
    """The copy's model history names its public rows (a budget, an audit sink) by their new ids.
    Their entries in the workspace's schema came with it, naming the source's rows by id; public
    rows get new ids here. Matched on the row's natural key, from the member still in
    archive_lines (loaded by the insert just made)."""
    keyed = _history_keyed(table)
    if keyed is None:
        return
    model, columns = keyed
    schema = _quoted(tenant.schema_name)
    same = " AND ".join(f"t.{_quoted(c)}::text IS NOT DISTINCT FROM l.j->>%s" for c in columns)
    loader.cursor.execute(
        f"UPDATE {schema}.auditlog_logentry h SET object_pk = m.new::text, object_id = m.new"
        f" FROM (SELECT l.j->>'id' AS old, t.id AS new FROM archive_lines l"
        f"       JOIN {table.qualified} t ON t.tenant_id = %s AND {same}) m,"
        f"      {schema}.django_content_type c"
        " WHERE c.app_label = %s AND c.model = %s AND h.content_type_id = c.id AND h.object_pk = m.old",
        [tenant.pk, *columns, model._meta.app_label, model._meta.model_name],
    )


def _sinks_history(tenant: Tenant) -> None:
    """A creation entry in the model history (`public`, where the platform's changes to sinks
    are) for each audit sink the import made with rows of the archive: where the copy's trail is
    pushed is no less recorded than a sink its admins add."""
    with schema_context(get_public_schema_name()):
        for sink in AuditSink.objects.filter(tenant_id=tenant.pk).order_by("pk"):
            log_create(AuditSink, sink, True)


def _secrets_blank(tenant: Tenant) -> None:
    """Every secret blank, as an export writes them: an archive is checksummed, not signed, and a
    crafted one's ciphertext (under another platform's key) would stay undecryptable here, and
    stop every key rotation (docs/export.md: rotation passes imported workspaces by). A webhook
    sink that had one arrives disabled, as an exported one does (EXPORTED_AS)."""
    owned = {table.name for table in public_tenant_tables()}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE public.audit_auditsink SET enabled = false, secret_encrypted = ''"
            " WHERE tenant_id = %s AND secret_encrypted <> ''",
            [tenant.pk],
        )
        cursor.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema IN (%s, 'public') AND right(column_name, %s) = %s ORDER BY 1, 2, 3",
            [tenant.schema_name, len(SECRET_SUFFIX), SECRET_SUFFIX],
        )
        for schema, table, column in cursor.fetchall():
            if schema == "public" and table not in owned:
                continue
            shown = column.removesuffix(SECRET_SUFFIX) + SHOWN_SUFFIX
            blank = [_quoted(c) for c in (column, shown) if c in stored_columns(Table(schema, table))]
            assignments, where = ", ".join(c + " = ''" for c in blank), " OR ".join(c + " <> ''" for c in blank)
            cursor.execute(
                f"UPDATE {_quoted(schema)}.{_quoted(table)} SET {assignments}"
                f" WHERE ({where})" + (" AND tenant_id = %s" if schema == "public" else ""),
                [tenant.pk] if schema == "public" else [],
            )


# The largest sequence number an imported chain may end at: room for the workspace's own events
# to follow (the chain appends seq + 1 into a bigint; an archive ending at 2^63 - 1 left none).
AUDIT_SEQ_MAX = 2**62


def _audit_room_check(tenant: Tenant) -> None:
    member = "public/audit_auditevent.ndjson"
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(seq) FROM public.audit_auditevent WHERE tenant_id = %s", [tenant.pk])
        last = cursor.fetchone()[0]
    if last is not None and last > AUDIT_SEQ_MAX:
        raise ArchiveError(
            "archive_rows_invalid",
            f"Member {member} ends its audit chain at #{last}, past {AUDIT_SEQ_MAX}: no room for the events to come.",
            member=member,
        )


def _chain_base_set(tenant: Tenant, manifest: dict) -> None:
    """Tell the audit chain its imported events were hashed under the original tenant's id (its
    base row, if the archive had one, came with the public rows: where the chain starts)."""
    audit = manifest.get("audit", {})
    hash_tenant_id = audit.get("hash_tenant_id")
    if not isinstance(hash_tenant_id, int):
        hash_tenant_id = manifest["tenant"]["id"]
    # The ids the chain was stored under at its source (an archive of before them: that source's own).
    stored_as = audit.get("chain_ids") or [manifest["tenant"]["id"]]
    audit_chain_base_set(tenant_id=tenant.pk, hash_tenant_id=hash_tenant_id, signed_as=stored_as)


def tenant_import(
    file: BinaryIO | str | Path,
    *,
    slug: str,
    name: str | None = None,
    actor=None,
    request: HttpRequest | None = None,
    progress: Progress | None = None,
    keep_networks: bool = False,
) -> Tenant:
    """A new workspace `slug` holding the archive's data, or nothing at all. The private networks
    the archive allows its http tools are kept only with `keep_networks` (an operator's choice);
    otherwise they are named in `tenant.networks_left`.

    Every member is verified against the manifest before anything is written (ArchiveError
    naming the member otherwise); then the tenant, its schema and every row are created in one
    transaction, while large members are parsed ahead on connections of their own (`_Staging`).
    Ids inside the schema are kept; public rows take the new tenant's id. The workspace's
    `checkpoint_keys_untrusted` names the keys its checkpoints were signed with that this platform
    does not trust (another platform's): they do not verify here until an operator lists them."""
    manifest = archive_verify(file)
    slug, name = _target_check(manifest, slug=slug, name=name)
    with _opened(file) as archive, _Staging(archive, manifest) as staging, transaction.atomic():
        tenant = _tenant_create(slug, name)
        loader = _Loader(archive, manifest, tenant, progress, staging)
        if progress:
            progress(0, loader.total)
        with _rows_of("public/tenants_tenant.ndjson"):
            networks_left = _tenant_settings_apply(loader, tenant, keep_networks=keep_networks)
        with _rows_of("public/tenants_domain.ndjson"):
            taken = _domains_attach(loader, tenant)
        _schema_load(loader, tenant.schema_name)
        _row_fixups(tenant.schema_name, manifest["schema_version"].get("tenant", {}))
        staging.drop(loader.cursor)
        with usage_scope(tenant.pk), rls_scope(tenant.pk):
            _public_load(loader, tenant)
            _audit_room_check(tenant)
            _times_check(tenant.schema_name, tenant)
            _secrets_blank(tenant)
            _sinks_history(tenant)
        with _rows_of("the archive"):
            # Deferred foreign keys are checked here rather than at the commit, so a row that
            # refers to one the archive does not hold is refused as the archive's fault.
            loader.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _chain_base_set(tenant, manifest)
        with schema_context(tenant.schema_name):
            from apps.accounts.models import User

            members = User.objects.filter(is_active=True).count()
        Tenant.objects.filter(pk=tenant.pk).update(member_count=members)
        if progress:
            progress(loader.total, loader.total)
        tenant.refresh_from_db()
        source = manifest["tenant"]
        data = {
            "from": {"id": source["id"], "slug": source.get("slug")},
            "rows": loader.done,
            "archive_created_at": manifest.get("created_at"),
            "domains_taken": taken,
            # The keys its checkpoints name that this platform does not trust (another platform's):
            # they do not verify here until an operator lists them (docs/export.md).
            "checkpoint_keys_untrusted": keys_untrusted(manifest.get("audit", {}).get("signing_keys", {})),
            # The private networks the archive allowed, not kept: an operator grants them again.
            "networks_left": networks_left,
        }
        tenant.checkpoint_keys_untrusted = data["checkpoint_keys_untrusted"]
        tenant.networks_left = networks_left
        for chain in (tenant.pk, PLATFORM):
            who = actor or "system"
            audit_record(action="tenant.imported", actor=who, target=tenant, data=data, request=request, chain=chain)
        hosts = list(tenant.domains.values_list("domain", flat=True))
        transaction.on_commit(lambda: route_invalidate(*hosts))
    return tenant
