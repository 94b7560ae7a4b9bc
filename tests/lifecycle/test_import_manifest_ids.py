"""Crafted manifests and reference rows that pass archive_verify are refused with a code, never
a database error (docs/export.md)."""

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.lifecycle.archive import MANIFEST, ArchiveError, tenant_import
from apps.tenants.models import Tenant
from tests.conftest import client_for
from tests.lifecycle.test_archive import archive_of, rewritten, world


def slug() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def acme_archive(acme) -> bytes:
    return archive_of(acme)[0]


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["audit"].update(hash_tenant_id=2**63),
        lambda m: (m.pop("audit"), m["tenant"].update(id=2**63)),
        lambda m: m["audit"].update(chain_ids=[1, 2**63]),
        lambda m: m["audit"].update(chain_ids="1"),
        lambda m: m["audit"].update(signing_keys=["dev1"]),
        lambda m: m["audit"].update(signing_keys={"dev1": ["AAAA", 7]}),
        lambda m: m["audit"].update(signing_keys={"x" * 65: []}),
        lambda m: m["audit"].update(signing_keys={"dev1\n": ["AAAA"]}),
        lambda m: m["audit"].update(signing_keys={"dev1": "AAAA"}),
    ],
    ids=[
        "audit.hash_tenant_id-beyond-bigint",
        "tenant.id-beyond-bigint-without-audit",
        "audit.chain_ids-beyond-bigint",
        "audit.chain_ids-not-a-list",
        "audit.signing_keys-not-an-object",
        "audit.signing_keys-key-not-text",
        "audit.signing_keys-id-too-long",
        "audit.signing_keys-id-not-printable",
        "audit.signing_keys-keys-not-a-list",
    ],
)
def test_a_manifest_hash_tenant_id_beyond_bigint_is_refused_not_a_database_error(acme_archive, change):
    """An id PostgreSQL cannot keep as a bigint makes the manifest unsound: `archive_damaged`,
    nothing written."""
    bad = rewritten(acme_archive, change)
    new_slug = slug()
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=new_slug)
    assert refused.value.member == MANIFEST
    assert not Tenant.objects.filter(slug=new_slug).exists()
    assert world() == before


def test_the_console_answers_a_manifest_with_an_out_of_range_chain_id_with_a_400(acme_archive, db):
    """The operator's import page answers it 400 with its code."""
    bad = rewritten(acme_archive, lambda m: m["audit"].update(hash_tenant_id=2**63))
    client = client_for(None, "operator@platform.test")
    client.raise_request_exception = False
    upload = SimpleUploadedFile("acme.zip", bad, content_type="application/zip")
    response = client.post("/tenants/import/", {"archive": upload, "slug": slug(), "name": ""})
    assert response.status_code == 400, response.status_code


def _extra_line(line: bytes):
    return lambda content: content + line + b"\n"


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": "not-a-number", "app_label": "runs", "model": "run"}',  # (j->>'id')::int
        b'{"id": 1, "app_label": "runs", "model": "run"',  # not JSON: refused by the json column
    ],
    ids=["id-not-an-integer", "line-not-json"],
)
def test_a_reference_member_row_the_import_cannot_read_is_archive_rows_invalid(acme_archive, line):
    """docs/export.md: "A row a table refuses ... is `archive_rows_invalid`, naming the member" — the
    `reference/` members too."""
    from tests.lifecycle.test_archive import with_member

    bad = with_member(acme_archive, "reference/django_content_type.ndjson", _extra_line(line))
    new_slug = slug()
    before = world()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(bad), slug=new_slug)
    assert refused.value.code == "archive_rows_invalid"
    assert refused.value.member == "reference/django_content_type.ndjson"
    assert not Tenant.objects.filter(slug=new_slug).exists()
    assert world() == before
