"""Hostile workspace archives and backups past the parsers' limits, and an archive's retention
policy the platform cannot apply: each is refused with its stable code (`archive_damaged`,
`archive_rows_invalid`; a BackupError) naming the member at fault, and nothing is created —
never a traceback or a 500 (docs/export.md, docs/export-jobs.md)."""

import io
import uuid
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from apps.lifecycle.archive import MANIFEST, ArchiveError, archive_verify, tenant_import
from apps.lifecycle.retention import retention_policy_set
from tests.lifecycle.test_archive import archive_of, with_member, world

PAGE = "/tenants/import/"
NESTED = 100_000  # far past Python's recursion limit and PostgreSQL's max_stack_depth (2 MB)


def slug() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def acme_archive(acme) -> bytes:
    return archive_of(acme)[0]


def _with_manifest_bytes(data: bytes, manifest: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as new:
        for info in archive.infolist():
            new.writestr(info.filename, manifest if info.filename == MANIFEST else archive.read(info))
    return out.getvalue()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_manifest_nested_past_pythons_parser_is_archive_damaged_not_a_recursion_error(acme_archive, db):
    """A manifest.json of ~200 KB nesting arrays 100,000 deep: Python's JSON decoder stops with
    RecursionError (not a ValueError), which is `archive_damaged` naming manifest.json."""
    bad = _with_manifest_bytes(acme_archive, b'{"format": "foundry-tenant-archive", "x": ' + _nested(NESTED) + b"}")
    with pytest.raises(ArchiveError) as refused:
        archive_verify(io.BytesIO(bad))
    assert (refused.value.code, refused.value.member) == ("archive_damaged", MANIFEST)


def _deep_line_archive(acme_archive: bytes) -> tuple[bytes, str]:
    member = "schema/lifecycle_retentionpolicy.ndjson"
    line = b'{"id": ' + _nested(NESTED) + b"}\n"
    return with_member(acme_archive, member, lambda content: content + line), member


def test_a_member_line_nested_past_postgresqls_parser_is_archive_rows_invalid(acme_archive, db):
    """A member line (checksums consistent, as another tool could write it) of JSON nested
    100,000 deep: PostgreSQL refuses it while it is copied into a `json` column (`stack depth
    limit exceeded`, SQLSTATE 54001, an OperationalError), which is `archive_rows_invalid`
    naming the member."""
    bad, member = _deep_line_archive(acme_archive)
    assert archive_verify(io.BytesIO(bad))  # consistent: only its rows are bad
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=slug())
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", member)
    assert world() == before


def test_the_console_answers_a_deeply_nested_archive_with_a_400_not_a_500(acme_archive, operator_client):
    """The same two, as an operator sees them: a 400 showing the refusal, not a 500."""
    operator_client.raise_request_exception = False
    manifest_bad = _with_manifest_bytes(
        acme_archive, b'{"format": "foundry-tenant-archive", "x": ' + _nested(NESTED) + b"}"
    )
    line_bad, _ = _deep_line_archive(acme_archive)
    statuses = {}
    for label, data in (("manifest", manifest_bad), ("line", line_bad)):
        archive = SimpleUploadedFile("acme.zip", data, content_type="application/zip")
        response = operator_client.post(PAGE, {"archive": archive, "slug": slug(), "name": ""})
        statuses[label] = response.status_code
    assert statuses == {"manifest": 400, "line": 400}


def test_an_archives_retention_policy_the_platform_cannot_apply_is_refused(acme_archive, acme, db):
    """The policy's columns take 0 to 2^31-1 days, the platform sets only 1 to 36,500
    (`retention_policy_set`). A policy of a million days would make every retention pass of the
    new workspace fail (`now - timedelta(days=1000000)` is before year 1): the import judges the
    archive's policy as `retention_policy_set` does and refuses it as `archive_rows_invalid`."""
    with schema_context(acme.schema_name), pytest.raises(ValidationError):
        retention_policy_set(actor="test", exports_days=1_000_000)  # the platform's own rule
    member = "schema/lifecycle_retentionpolicy.ndjson"
    bad = with_member(acme_archive, member, lambda c: c.replace(b'"exports_days":7', b'"exports_days":1000000'))
    assert b'"exports_days":1000000' in zipfile.ZipFile(io.BytesIO(bad)).read(member)
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=slug())
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", member)
    assert "exports_days" in str(refused.value)
    assert world() == before


def test_a_backup_whose_manifest_is_nested_past_pythons_parser_is_a_backup_error(tmp_path):
    """`backup_open` refuses a tar whose manifest.json nests 100,000 arrays deep with a
    BackupError naming the file, as any other manifest that is not JSON."""
    import tarfile

    from apps.lifecycle.backup import BackupError, backup_open

    body = b'{"format": "foundry-backup", "x": ' + _nested(NESTED) + b"}"
    path = tmp_path / "foundry-database-20260101T000000.000Z.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    with pytest.raises(BackupError):
        backup_open(path)
