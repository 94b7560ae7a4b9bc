"""Workspace archives: export → import as a new slug gives the same rows, refused archives
write nothing, and one workspace's archive holds none of another's data."""

import hashlib
import io
import json
import struct
import uuid
import zipfile
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.audit.models import PLATFORM, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign
from apps.audit.verify import audit_verify
from apps.billing.models import Budget
from apps.billing.rls import usage_scope
from apps.billing.services import budget_set
from apps.identity.models import SsoConfiguration
from apps.identity.services import sso_secret_place
from apps.lifecycle import archive as archive_module
from apps.lifecycle.archive import (
    EXCLUDED_TABLES,
    MANIFEST,
    SECRET_SUFFIX,
    SHOWN_SUFFIX,
    STAGING_PREFIX,
    ArchiveError,
    archive_verify,
    tenant_export,
    tenant_import,
)
from apps.lifecycle.inventory import public_tenant_tables, schema_tables
from apps.providers.encryption import secret_encrypt
from apps.providers.services import credential_set
from apps.runs.models import Approval, Run, Step
from apps.tenants.models import Domain, Tenant
from apps.tokens.services import token_issue
from tests.audit.conftest import SIGNING_SEED
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
from tests.runs.test_engine import start

# Public rows an import adds besides the archive's: its own audit event, and the chain head it moves.
IMPORT_EVENT = "tenant.imported"


@pytest.fixture
def signing(settings):
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []


def stock(tenant: Tenant, marker: str) -> None:
    """Data of every kind in `tenant`, with `marker` in what it can carry."""
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        token_issue(actor=owner, name=f"ci-{marker}", role="developer", scopes=["read", "run"])
        credential_set(actor=owner, provider="openai", api_key=f"sk-{marker}-0123456789", base_url="")
        SsoConfiguration.objects.create(
            issuer=f"https://idp.{marker}.example",
            client_id=f"client-{marker}",
            client_secret_encrypted=secret_encrypt(f"sso-secret-{marker}", place=sso_secret_place()),
            authorization_endpoint="https://idp.example/authorize",
            token_endpoint="https://idp.example/token",
            jwks_uri="https://idp.example/jwks",
            discovered_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
    with rls_scope(tenant.pk):
        from apps.audit.models import AuditSink

        AuditSink.objects.create(
            tenant_id=tenant.pk,
            name="siem",
            kind="webhook",
            url=f"https://siem.{marker}.example/hook",
            secret_encrypted=secret_encrypt(f"sink-secret-{marker}", place=f"public/audit_auditsink/{tenant.pk}/siem"),
            updated_at=datetime.now(UTC),
        )
        AuditSink.objects.create(
            tenant_id=tenant.pk,
            name="unsigned",
            kind="webhook",
            url=f"https://logs.{marker}.example/hook",
            updated_at=datetime.now(UTC),
        )
    agent = deploy(tenant, FINANCE, TRIAGE)
    done = advance(start(tenant, agent, f"Triage invoice INV-1001. {marker}"), tenant.schema_name)
    assert done.status == "succeeded", done.message
    waiting = advance(start(tenant, agent, "Look up the 25,000 EUR invoice."), tenant.schema_name)
    assert waiting.status == "waiting_approval"
    with schema_context(tenant.schema_name):
        budget_set(actor=owner, tenant_id=tenant.pk, project="", monthly_tokens=5_000_000)
        assert Step.objects.exists() and Approval.objects.exists()
    assert audit_checkpoint_sign(tenant.pk) is not None


@pytest.fixture
def stocked(fresh_tenant, db, signing):
    stock(fresh_tenant, "alpha")
    return fresh_tenant


def schema_rows(schema: str, table: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT row_to_json(t)::jsonb FROM "{schema}"."{table}" t')
        return sorted((json.loads(r) if isinstance(r, str) else r for (r,) in cursor.fetchall()), key=json.dumps)


def public_rows(tenant_id: int, table: str) -> list[dict]:
    """The tenant's rows of a public table, without their own ids and the tenant's."""
    with usage_scope(tenant_id), rls_scope(tenant_id), connection.cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(t)::jsonb FROM public.{table} t WHERE tenant_id = %s", [tenant_id])
        rows = [json.loads(r) if isinstance(r, str) else r for (r,) in cursor.fetchall()]
    for row in rows:
        row.pop("tenant_id")
        if table != "audit_auditchain":
            row.pop("id", None)
    return sorted(rows, key=json.dumps)


def public_keys() -> set:
    """The public schema's constraints and indexes, by object id (a rebuilt one gets a new id)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oid FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
            " UNION ALL SELECT indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relnamespace = 'public'::regnamespace"
        )
        return {oid for (oid,) in cursor.fetchall()}


def archive_of(tenant: Tenant) -> tuple[bytes, dict]:
    out = io.BytesIO()
    manifest = tenant_export(tenant, out)
    return out.getvalue(), manifest


def world() -> dict:
    """What an import could have written anywhere: tenants, schemas, domains, platform events.
    Staging schemas apart (`staging_schemas` lists them; an import drops the dead ones it finds),
    and sessions' temporary schemas (PostgreSQL keeps them, empty, for the next session)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_namespace WHERE NOT starts_with(nspname, %s) AND nspname !~ '^pg_(toast_)?temp_'",
            [STAGING_PREFIX],
        )
        schemas = cursor.fetchone()[0]
    with rls_scope(PLATFORM):
        platform_events = AuditEvent.objects.filter(tenant_id=PLATFORM).count()
    return {
        "tenants": Tenant.objects.count(),
        "schemas": schemas,
        "domains": Domain.objects.count(),
        "platform_events": platform_events,
    }


def history_followed(new: Tenant, rows: list[dict], expected: list[dict]) -> list[dict]:
    """`expected` (the source's history), its entries of public rows naming them as the copy does:
    the workspace's own row and its budgets, which an import gives new ids, by those ids."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, model FROM "{new.schema_name}".django_content_type')
        models = dict(cursor.fetchall())
    with usage_scope(new.pk):
        copies = {
            "tenant": {new.pk},
            "budget": set(Budget.objects.filter(tenant_id=new.pk).values_list("pk", flat=True)),
        }
    now = {row["id"]: row for row in rows}
    followed = [row for row in expected if row["object_pk"] != now[row["id"]]["object_pk"]]
    assert {models[row["content_type_id"]] for row in followed} == {"budget"}
    for row in followed:
        assert now[row["id"]]["object_id"] in copies[models[row["content_type_id"]]]
    return [{**row, **{k: now[row["id"]][k] for k in ("object_pk", "object_id")}} for row in expected]


@pytest.mark.parametrize("bulk_rows", [archive_module.BULK_ROWS, 1])  # 1: every table loads without its keys
def test_it_exports_and_imports_every_row_of_every_table(stocked, bulk_rows, monkeypatch):
    monkeypatch.setattr(archive_module, "BULK_ROWS", bulk_rows)
    source = stocked
    tables = [t.name for t in schema_tables(source.schema_name) if t.name not in EXCLUDED_TABLES]
    before = {t: schema_rows(source.schema_name, t) for t in tables}
    public = [t.name for t in public_tenant_tables() if t.name not in ("tenants_domain", "audit_auditchain")]
    public_before = {t: public_rows(source.pk, t) for t in public}
    assert all(before[t] for t in ("accounts_user", "tokens_apitoken", "runs_step", "checkpoints", "catalog_version"))
    assert all(
        public_before[t] for t in ("audit_auditevent", "audit_auditcheckpoint", "billing_usage", "billing_budget")
    )

    data, manifest = archive_of(source)
    assert archive_verify(io.BytesIO(data)) == manifest
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert json.loads(archive.read(MANIFEST)) == manifest
        assert sorted(archive.namelist()) == sorted([MANIFEST] + [m["name"] for m in manifest["members"]])
        for member in manifest["members"]:
            content = archive.read(member["name"])
            assert content.count(b"\n") == member["rows"]
    assert {"providers_providercredential.api_key_encrypted", "identity_ssoconfiguration.client_secret_encrypted",
            "audit_auditsink.secret_encrypted"} <= set(manifest["secrets_omitted"])  # fmt: skip

    shared = public_keys()
    seen = []
    new = tenant_import(io.BytesIO(data), slug=f"r{uuid.uuid4().hex[:10]}", progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, manifest["rows"]) and seen[-1] == (manifest["rows"], manifest["rows"])
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert new.schema_name != source.schema_name and new.name == source.name and new.plan == source.plan
    assert new.member_count == 2
    assert public_keys() == shared  # shared tables keep their indexes and keys (never rebuilt)

    for table in tables:
        rows = schema_rows(new.schema_name, table)
        expected = [
            {k: ("" if k.endswith((SECRET_SUFFIX, SHOWN_SUFFIX)) else v) for k, v in row.items()}
            for row in before[table]
        ]
        if table == "tokens_apitoken":
            # Every token arrives revoked: those revoked already as they were, the others as of the export.
            assert all(r["revoked_at"] for r in rows)
            revoked = {r["id"]: r["revoked_at"] for r in rows}
            expected = [{**row, "revoked_at": row["revoked_at"] or revoked[row["id"]]} for row in expected]
        if table == "auditlog_logentry":
            expected = history_followed(new, rows, expected)
        if table == "runs_run":
            # A run under way in the source is not resumed in the copy: cancelled as of the import.
            ended = {r["id"]: r for r in rows if r["reason"] == "imported"}
            assert set(ended) == {r["id"] for r in before[table] if r["status"] not in Run.FINISHED}
            assert {r["status"] for r in ended.values()} == {"cancelled"}
            fields = ("status", "reason", "message", "finished_at", "updated_at")
            expected = [
                {**row, **{f: ended[row["id"]][f] for f in fields}} if row["id"] in ended else row for row in expected
            ]
        if table == "runs_approval":
            closed = {r["id"]: r["decided_at"] for r in rows}
            expected = [
                {**row, "decision": "cancelled", "decided_at": closed[row["id"]]}
                if row["decision"] == "pending"
                else row
                for row in expected
            ]
        assert rows == expected, table
    for table in public:
        rows = public_rows(new.pk, table)
        if table == "audit_auditevent":
            assert [r["action"] for r in rows if r["action"] == IMPORT_EVENT] == [IMPORT_EVENT]
            rows = [r for r in rows if r["action"] != IMPORT_EVENT]
        expected = public_before[table]
        if table == "audit_auditchainbase":  # the chain was hashed under the source's id
            assert not expected
            assert [(r["hash_tenant_id"], r["first_seq"]) for r in rows] == [(source.pk, 1)]
            continue
        if table == "audit_auditsink":
            # The secret stays behind, so the sink that signed arrives disabled (it would push
            # unsigned); the one that never signed goes on as it was.
            assert {r["name"]: r["enabled"] for r in rows} == {"siem": False, "unsigned": True}
            expected = [
                {**row, "secret_encrypted": "", "enabled": row["enabled"] and not row["secret_encrypted"]}
                for row in expected
            ]
        assert rows == expected, table
    with schema_context(new.schema_name):
        assert not Run.objects.exclude(status__in=Run.FINISHED).exists()
        assert members_count(new) == 2
    with schema_context(source.schema_name):
        assert Run.objects.filter(status="waiting_approval").count() == 1  # the source goes on with it
    # Ids go on from the largest imported one.
    with schema_context(new.schema_name):
        from apps.tokens.models import ApiToken

        owner = tenant_user(new, f"owner@{source.slug}.test")
        issued = token_issue(actor=owner, name="after-import", role="viewer", scopes=["read"])
        assert issued.token.pk > max(t.pk for t in ApiToken.objects.exclude(pk=issued.token.pk))
    assert Domain.objects.get(tenant=new).domain == f"{new.slug}.localhost"


def test_a_token_of_the_source_does_not_open_the_imported_copy(stocked, client):
    from apps.tokens.services import token_authenticate

    owner = tenant_user(stocked, f"owner@{stocked.slug}.test")
    with schema_context(stocked.schema_name):
        issued = token_issue(actor=owner, name="ci-live", role="admin", scopes=["read"])
    data, _ = archive_of(stocked)
    new = tenant_import(io.BytesIO(data), slug=f"r{uuid.uuid4().hex[:10]}")

    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.plaintext}"}
    on_source = client.get("/api/v1/workspace", HTTP_HOST=f"{stocked.slug}.localhost", **auth)
    on_copy = client.get("/api/v1/workspace", HTTP_HOST=f"{new.slug}.localhost", **auth)
    assert on_source.status_code == 200
    assert on_copy.status_code == 401, on_copy.content
    with schema_context(new.schema_name):
        assert token_authenticate(issued.plaintext) is None
        from apps.tokens.models import ApiToken

        copied = ApiToken.objects.get(prefix=issued.token.prefix)
        assert copied.name == "ci-live" and copied.revoked_at is not None
    with rls_scope(new.pk):
        refused = [e.data for e in AuditEvent.objects.filter(tenant_id=new.pk, action="auth.token.rejected")]
    assert refused == [{"reason": "revoked"}] * 2  # the request's, then token_authenticate's


def members_count(tenant: Tenant) -> int:
    from apps.accounts.models import User

    with schema_context(tenant.schema_name):
        return User.objects.count()


def test_the_imported_audit_chain_verifies(stocked):
    data, manifest = archive_of(stocked)
    new = tenant_import(io.BytesIO(data), slug=f"r{uuid.uuid4().hex[:10]}")
    result = audit_verify(new.pk)
    assert result.ok, result.summary()
    assert result.checkpoints >= 1 and result.events >= 2
    with rls_scope(PLATFORM):
        assert AuditEvent.objects.filter(tenant_id=PLATFORM, action=IMPORT_EVENT, target_id=str(new.pk)).exists()
    with rls_scope(stocked.pk):
        exported = AuditEvent.objects.filter(tenant_id=stocked.pk, action="tenant.exported").get()
    assert exported.data["rows"] == manifest["rows"]


def members_of(data: bytes) -> list[tuple[str, int, int]]:
    """(name, offset of its stored data, stored size) of every member."""
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
            found.append((info.filename, info.header_offset + 30 + name_length + extra_length, info.compress_size))
    return found


def test_a_flipped_byte_in_any_member_is_refused_naming_it_and_nothing_is_written(stocked):
    data, manifest = archive_of(stocked)
    before = world()
    members = members_of(data)
    assert len(members) == len(manifest["members"]) + 1
    for name, offset, size in members:
        damaged = bytearray(data)
        damaged[offset + size // 2] ^= 0x01
        with pytest.raises(ArchiveError) as refused:
            tenant_import(io.BytesIO(bytes(damaged)), slug=f"r{uuid.uuid4().hex[:10]}")
        assert refused.value.code == "archive_damaged", (name, refused.value.message)
        assert refused.value.member == name
        assert name in refused.value.message
    assert world() == before


def test_a_member_altered_with_its_zip_checksum_fixed_is_refused_by_the_manifest(stocked):
    data, _ = archive_of(stocked)
    deactivated = with_member(
        data,
        "schema/accounts_user.ndjson",
        lambda content: content.replace(b'"is_active":true', b'"is_active":false', 1),
        manifest_fixed=False,
    )
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(deactivated), slug=f"r{uuid.uuid4().hex[:10]}")
    assert (refused.value.code, refused.value.member) == ("archive_damaged", "schema/accounts_user.ndjson")
    assert world() == before


@pytest.mark.parametrize("keep", [0.5, 0.99, 4])
def test_a_truncated_archive_is_refused(stocked, keep):
    data, _ = archive_of(stocked)
    cut = data[: int(len(data) * keep)] if keep < 1 else data[:keep]
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(cut), slug=f"r{uuid.uuid4().hex[:10]}")
    assert refused.value.code == "archive_truncated"
    assert world() == before


def rewritten(data: bytes, change) -> bytes:
    """The archive with its manifest changed by `change(manifest)`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as new:
        for info in archive.infolist():
            content = archive.read(info)
            if info.filename == MANIFEST:
                manifest = json.loads(content)
                change(manifest)
                content = json.dumps(manifest).encode()
            new.writestr(info.filename, content)
    return out.getvalue()


def test_an_archive_of_a_newer_format_or_schema_is_refused(stocked):
    data, _ = archive_of(stocked)
    before = world()
    newer = rewritten(data, lambda m: m.update(format_version=m["format_version"] + 1))
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(newer), slug=f"r{uuid.uuid4().hex[:10]}")
    assert (refused.value.code, refused.value.member) == ("archive_format_newer", MANIFEST)

    later = rewritten(data, lambda m: m["schema_version"]["tenant"]["runs"].append("9999_from_the_future"))
    with pytest.raises(ArchiveError) as refused:
        archive_verify(io.BytesIO(later))
    assert refused.value.code == "archive_schema_newer"
    assert "runs.9999_from_the_future" in refused.value.message
    assert world() == before


def test_a_file_that_is_no_archive_is_refused(db, tmp_path):
    path = tmp_path / "notes.zip"
    path.write_bytes(b"just some notes\n")
    with pytest.raises(ArchiveError) as refused:
        archive_verify(path)
    assert refused.value.code == "archive_not_an_archive"
    with pytest.raises(ArchiveError) as refused:
        archive_verify(tmp_path / "missing.zip")
    assert refused.value.code == "archive_unreadable"


@pytest.mark.parametrize(
    ("slug", "code"),
    [("globex", "slug_taken"), ("acme", "slug_taken"), ("Bad_Slug", "slug_invalid"), ("admin", "slug_reserved")],
)
def test_a_taken_or_invalid_slug_is_refused_and_nothing_is_written(stocked, globex, slug, code):
    data, _ = archive_of(stocked)
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(data), slug=slug)
    assert refused.value.code == code
    assert world() == before
    assert Tenant.objects.get(slug="globex").pk == globex.pk


def archive_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(archive.read(name).decode() for name in archive.namelist())


def test_an_archive_holds_none_of_another_workspaces_data(stocked):
    from apps.tenants.services import tenant_provision
    from tests.conftest import PASSWORD

    other_slug = f"o{uuid.uuid4().hex[:10]}"
    other = tenant_provision(
        slug=other_slug, name="Other Co", owner_email=f"owner@{other_slug}.test", owner_password=PASSWORD
    ).tenant
    with schema_context(other.schema_name):
        owner = tenant_user(other, f"owner@{other_slug}.test")
        token_issue(actor=owner, name="ci-bravo", role="developer", scopes=["read"])
        credential_set(actor=owner, provider="openai", api_key="sk-bravo-0123456789", base_url="")
    with schema_context(other.schema_name):
        budget_set(actor=owner, tenant_id=other.pk, project="", monthly_tokens=7_777_777)

    text = archive_text(archive_of(stocked)[0])
    assert "alpha" in text and stocked.slug in text
    for foreign in ("bravo", other_slug, "7777777", "Other Co", "acme", "globex"):
        assert foreign not in text, foreign

    other_before = {t.name: schema_rows(other.schema_name, t.name) for t in schema_tables(other.schema_name)}
    stocked_before = {t.name: schema_rows(stocked.schema_name, t.name) for t in schema_tables(stocked.schema_name)}
    public_before = {t.name: public_rows(other.pk, t.name) for t in public_tenant_tables()}
    new = tenant_import(io.BytesIO(archive_of(stocked)[0]), slug=f"r{uuid.uuid4().hex[:10]}")
    assert new.pk not in (other.pk, stocked.pk)
    assert {t.name: schema_rows(other.schema_name, t.name) for t in schema_tables(other.schema_name)} == other_before
    after = {t.name: schema_rows(stocked.schema_name, t.name) for t in schema_tables(stocked.schema_name)}
    assert after == stocked_before
    assert {t.name: public_rows(other.pk, t.name) for t in public_tenant_tables()} == public_before


def staging_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", [STAGING_PREFIX])
        return sorted(name for (name,) in cursor.fetchall())


def with_member(data: bytes, name: str, change, *, manifest_fixed: bool = True) -> bytes:
    """The archive with member `name`'s content changed by `change(content)` (the zip's own
    checksums recomputed), and its manifest entry to match — a consistent archive, as another
    tool could make one — or, `manifest_fixed=False`, as it was (an archive altered after export)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as new:
        manifest = json.loads(archive.read(MANIFEST))
        content = change(archive.read(name))
        if manifest_fixed:
            entry = next(m for m in manifest["members"] if m["name"] == name)
            entry.update(sha256=hashlib.sha256(content).hexdigest(), bytes=len(content), rows=content.count(b"\n"))
        for info in archive.infolist():
            if info.filename != MANIFEST:
                new.writestr(info.filename, content if info.filename == name else archive.read(info))
        new.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


def other_connection():
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


def step_without_node(content: bytes) -> bytes:
    return content.replace(b'"node":"model"', b'"node":null', 1)  # NOT NULL: refused as it is parsed


def step_twice(content: bytes) -> bytes:
    return content + content[: content.index(b"\n") + 1]  # its id twice: refused by the primary key


def step_of_no_run(content: bytes) -> bytes:
    """A step whose run the archive does not hold: refused by the foreign key, at the end."""
    first, rest = content.split(b"\n", 1)
    row = json.loads(first)
    row["run_id"] = str(uuid.uuid4())
    return json.dumps(row).encode() + b"\n" + rest


# BULK_ROWS 1: runs_step is parsed ahead on the staging connections, and loads without its keys.
@pytest.mark.parametrize("bulk_rows", [archive_module.BULK_ROWS, 1])
@pytest.mark.parametrize("change", [step_without_node, step_twice, step_of_no_run])
def test_a_row_its_table_refuses_mid_load_leaves_nothing_behind(stocked, bulk_rows, change, monkeypatch):
    monkeypatch.setattr(archive_module, "BULK_ROWS", bulk_rows)
    data, _ = archive_of(stocked)
    # The archive verifies; the row is refused mid-load, once the schema was created and the
    # tables before runs_step were loaded.
    broken = with_member(data, "schema/runs_step.ndjson", change)
    assert archive_verify(io.BytesIO(broken))
    before, staged_before, slug = world(), staging_schemas(), f"r{uuid.uuid4().hex[:10]}"
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(broken), slug=slug)
    assert refused.value.code == "archive_rows_invalid"
    if change is step_of_no_run:  # found once every table is in: the archive is at fault
        assert refused.value.member.startswith("the archive") and "foreign key" in refused.value.message
    else:
        assert refused.value.member == "schema/runs_step.ndjson"
        assert ("node" if change is step_without_node else "unique") in refused.value.message
    assert world() == before
    assert not Tenant.objects.filter(slug=slug).exists() and not Domain.objects.filter(domain__startswith=slug)
    assert set(staging_schemas()) <= set(staged_before)  # its own staging schema dropped too


def test_a_staging_schema_left_by_a_killed_import_is_dropped_by_the_next_one(stocked, monkeypatch):
    monkeypatch.setattr(archive_module, "BULK_ROWS", 1)
    dead, live = f"{STAGING_PREFIX}dead{uuid.uuid4().hex[:8]}", f"{STAGING_PREFIX}live{uuid.uuid4().hex[:8]}"
    with other_connection() as killed, other_connection() as running:
        for schema in (dead, live):
            killed.execute(f'CREATE SCHEMA "{schema}"')
            killed.execute(f'CREATE UNLOGGED TABLE "{schema}".runs_step (LIKE _foundry_base.runs_step)')
        running.execute("SELECT pg_advisory_lock(hashtext(%s))", [live])  # an import still running holds it
        try:
            new = tenant_import(io.BytesIO(archive_of(stocked)[0]), slug=f"r{uuid.uuid4().hex[:10]}")
            assert schema_rows(new.schema_name, "runs_step") == schema_rows(stocked.schema_name, "runs_step")
            assert dead not in staging_schemas() and live in staging_schemas()
        finally:
            running.execute(f'DROP SCHEMA IF EXISTS "{live}" CASCADE')
            killed.execute(f'DROP SCHEMA IF EXISTS "{dead}" CASCADE')


# An archive written before tokens were exported revoked (same format version): the import revokes them.
PREVIOUS_RELEASES_EXPORTED_AS = {("audit_auditsink", "enabled"): "enabled AND secret_encrypted = ''"}


def test_an_archive_of_the_previous_release_does_not_import_live_tokens(stocked, client, monkeypatch):
    owner = tenant_user(stocked, f"owner@{stocked.slug}.test")
    with schema_context(stocked.schema_name):
        issued = token_issue(actor=owner, name="ci-live", role="admin", scopes=["read"])
    # An archive as dc48132 (the commit before this change) wrote it: same format version.
    monkeypatch.setattr(archive_module, "EXPORTED_AS", PREVIOUS_RELEASES_EXPORTED_AS)
    out = io.BytesIO()
    manifest = tenant_export(stocked, out)
    monkeypatch.undo()
    assert manifest["format_version"] == archive_module.FORMAT_VERSION

    new = tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")  # today's import
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.plaintext}"}
    on_copy = client.get("/api/v1/workspace", HTTP_HOST=f"{new.slug}.localhost", **auth)
    assert on_copy.status_code == 401, (on_copy.status_code, on_copy.content[:200])
