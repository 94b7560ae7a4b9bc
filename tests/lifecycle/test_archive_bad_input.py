"""Malformed or hostile workspace archives and backups (docs/export.md,
docs/operations/disaster-recovery.md): each is refused with a clear error naming what is wrong,
and nothing is imported or restored — never a traceback, a 500 or a workspace imported broken."""

import io
import json
import tarfile
import tracemalloc
import uuid
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.lifecycle.archive import MANIFEST, ArchiveError, archive_verify, tenant_import
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_provision
from tests.conftest import client_for
from tests.lifecycle.test_archive import archive_of, rewritten, with_member, world
from tests.lifecycle.test_import_console import upload


def slug() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def acme_archive(acme) -> bytes:
    return archive_of(acme)[0]


# --- a manifest of the wrong shape ---------------------------------------------------------------


def test_manifest_audit_of_the_wrong_type_is_refused_not_a_traceback(acme_archive):
    """docs/export.md: `manifest.json` is sound or `archive_damaged`; 'no 500 on any input'."""
    bad = rewritten(acme_archive, lambda m: m.update(audit="not-an-object"))
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=slug())
    assert refused.value.code == "archive_damaged" and refused.value.member == MANIFEST
    assert world() == before


def test_manifest_schema_version_of_the_wrong_type_is_refused_not_a_traceback(acme_archive):
    bad = rewritten(acme_archive, lambda m: m["schema_version"]["tenant"].update(runs=5))
    with pytest.raises(ArchiveError) as refused:
        archive_verify(io.BytesIO(bad))
    assert refused.value.code == "archive_damaged" and refused.value.member == MANIFEST


# --- rows of the public members of the wrong type ----------------------------------------------


def _extra_domain(row: bytes):
    return lambda content: content + row + b"\n"


@pytest.mark.parametrize(
    "row",
    [
        b'{"id":9,"domain":"custom.example","is_primary":"maybe","tenant_id":1}',  # not a boolean
        b'{"id":9,"domain":null,"is_primary":false,"tenant_id":1}',  # NOT NULL
        b'{"id":9,"domain":"' + b"a" * 300 + b'.example","is_primary":false,"tenant_id":1}',  # varchar(253)
    ],
    ids=["is_primary-not-boolean", "domain-null", "domain-too-long"],
)
def test_a_domain_row_its_table_refuses_is_archive_rows_invalid(acme_archive, row):
    """docs/export.md: 'A row a table refuses (a wrong type, a missing value …) is
    archive_rows_invalid, naming the member.'"""
    _refused_rows(with_member(acme_archive, "public/tenants_domain.ndjson", _extra_domain(row)), "tenants_domain")


def _refused_rows(bad: bytes, table: str) -> None:
    """An archive that verifies, whose rows of public `table` the import refuses, changing nothing."""
    assert archive_verify(io.BytesIO(bad))
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=slug())
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", f"public/{table}.ndjson")
    assert world() == before


def tenant_row_edit(change):
    def edit(content: bytes) -> bytes:
        row = json.loads(content)
        change(row)
        return json.dumps(row).encode() + b"\n"

    return edit


@pytest.mark.parametrize(
    "change",
    [
        lambda row: row.update(requests_per_second_override=-5),  # CHECK (>= 0)
        lambda row: row.update(requests_per_second_override="lots"),  # not an integer
    ],
    ids=["negative-override", "override-not-integer"],
)
def test_a_tenant_row_its_table_refuses_is_archive_rows_invalid(acme_archive, change):
    _refused_rows(with_member(acme_archive, "public/tenants_tenant.ndjson", tenant_row_edit(change)), "tenants_tenant")


def test_the_console_answers_a_bad_domain_row_with_a_clear_400_not_a_500(acme_archive, db):
    bad = with_member(
        acme_archive,
        "public/tenants_domain.ndjson",
        _extra_domain(b'{"id":9,"domain":"custom.example","is_primary":"maybe","tenant_id":1}'),
    )
    client = client_for(None, "operator@platform.test")
    client.raise_request_exception = False
    archive = SimpleUploadedFile("acme.zip", bad, content_type="application/zip")
    response = client.post("/tenants/import/", {"archive": archive, "slug": slug(), "name": ""})
    assert response.status_code == 400, response.status_code


def test_an_archive_with_an_invalid_allowed_network_is_refused_not_imported_broken(acme_archive):
    """An invalid one would make every user of Tenant.http_networks() (agent http tools, SSO
    discovery, providers, sinks) raise once imported: refused, nothing imported."""
    bad = with_member(
        acme_archive,
        "public/tenants_tenant.ndjson",
        tenant_row_edit(lambda row: row.update(http_allowed_networks=["not-a-network"])),
    )
    new_slug = slug()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=new_slug)
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", "public/tenants_tenant.ndjson")
    assert not Tenant.objects.filter(slug=new_slug).exists()


# --- a decompression bomb in the manifest ------------------------------------------------------


def test_a_manifest_that_decompresses_to_a_huge_size_is_not_read_whole_into_memory(acme_archive):
    """A few tens of KB of upload inflating to 48 MiB of manifest: read with a bound, refused (the
    console caps the upload, not what it inflates to)."""
    padding = 48 * 1024 * 1024
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(acme_archive)) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for info in archive.infolist():
            content = archive.read(info)
            if info.filename == MANIFEST:
                content = b" " * padding + content
            new.writestr(info.filename, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    bomb = out.getvalue()
    assert len(bomb) < 2 * len(acme_archive) + 200_000  # the upload stays small
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError) as refused:
            archive_verify(io.BytesIO(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (refused.value.code, refused.value.member) == ("archive_damaged", MANIFEST)
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for a {len(bomb) / 2**10:.0f} KiB archive"


# --- backups: a malformed manifest -------------------------------------------------------------


def _backup_with_manifest(path, manifest: dict) -> None:
    body = json.dumps(manifest).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))


@pytest.mark.parametrize(
    "manifest",
    [
        {"format": "foundry-backup", "version": 1, "scope": "tenant", "members": {}},  # no tenant
        {
            "format": "foundry-backup",
            "version": 1,
            "scope": "tenant",
            "members": {},
            "tenant": {"id": 987654, "slug": "gone", "schema_name": "gone"},
        },  # no tables
    ],
    ids=["no-tenant", "no-tables"],
)
def test_restore_of_a_backup_with_an_incomplete_manifest_is_a_clear_refusal(db, tmp_path, manifest):
    """disaster-recovery.md: 'a missing, truncated, altered or foreign file is refused naming the
    file' — the command ends with a CommandError, not a traceback."""
    path = tmp_path / "foundry-tenant-gone-20250101T000000.000Z.tar"
    _backup_with_manifest(path, manifest)
    with pytest.raises(CommandError) as refused:
        call_command("restore", str(path), stdout=io.StringIO())
    assert str(path) in str(refused.value)


def _rezipped(data: bytes, *, name: str, flag_bits: int = 0, compress_type: int | None = None) -> bytes:
    """The same archive (members stored), with member `name`'s entry given `flag_bits` or a
    `compress_type`, patched in its local header and the central directory (its bytes as they are)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as new:
        for info in source.infolist():
            fresh = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            fresh.compress_type = zipfile.ZIP_STORED
            new.writestr(fresh, source.read(info))
    raw = bytearray(out.getvalue())
    encoded = name.encode()
    # (signature, where the name starts, offset of the flags, offset of the method)
    for signature, name_offset, flags_at, method_at in ((b"PK\x03\x04", 30, 6, 8), (b"PK\x01\x02", 46, 8, 10)):
        at = 0
        while (at := raw.find(signature, at)) != -1:
            if raw[at + name_offset : at + name_offset + len(encoded)] == encoded:
                flags = int.from_bytes(raw[at + flags_at : at + flags_at + 2], "little") | flag_bits
                raw[at + flags_at : at + flags_at + 2] = flags.to_bytes(2, "little")
                if compress_type is not None:
                    raw[at + method_at : at + method_at + 2] = compress_type.to_bytes(2, "little")
            at += 4
    return bytes(raw)


CASES = {
    "encrypted-flag": {"flag_bits": 0x1},
    "unknown-method": {"compress_type": 99},
}


@pytest.mark.parametrize("change", CASES.values(), ids=CASES.keys())
def test_an_entry_marked_encrypted_or_compressed_by_an_unknown_method_is_refused_not_a_traceback(
    acme, operator_client, change
):
    """zipfile raises RuntimeError ("password required") and NotImplementedError (7-Zip's AES,
    method 99) for these: refused as archive_damaged naming the member, a 400 on the console."""
    crafted = _rezipped(archive_of(acme)[0], name=MANIFEST, **change)
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=f"r{uuid.uuid4().hex[:10]}")
    assert (refused.value.code, refused.value.member) == ("archive_damaged", MANIFEST)
    operator_client.raise_request_exception = False
    assert upload(operator_client, crafted, slug=f"r{uuid.uuid4().hex[:10]}").status_code == 400


IMPORT_NAMES = ["Acme\u202egnp.exe", "Acme\x7f", "Acme\x85Corp", "Acme\u2028Corp"]


@pytest.mark.parametrize("name", IMPORT_NAMES, ids=["rlo", "del", "c1-nel", "line-separator"])
def test_an_imported_workspace_name_follows_the_provisioning_rule(acme, operator_client, settings, tmp_path, name):
    """No control, format (a bidi override), or line separator character: refused on import as
    on provisioning, from the form or the archive's manifest."""
    settings.MEDIA_ROOT = str(tmp_path)
    with pytest.raises(ValidationError) as refused:  # the rule, as provisioning applies it
        tenant_provision(slug="rv-named", name=name, owner_email="o@rv.test")
    assert refused.value.error_dict["name"][0].code == "name_invalid"

    archive = SimpleUploadedFile("acme.zip", archive_of(acme)[0], content_type="application/zip")
    response = operator_client.post("/tenants/import/", {"archive": archive, "slug": "rv-imported", "name": name})

    imported = Tenant.objects.filter(slug="rv-imported").first()
    assert imported is None, imported.name
    assert response.status_code == 400
