"""Crafted archives imported as a new workspace (docs/export.md, docs/export-jobs.md)."""

import hashlib
import io
import json
import os
import uuid
import zipfile
from datetime import timedelta

import ormsgpack
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.archive import MANIFEST, ArchiveError, tenant_export, tenant_import
from apps.lifecycle.exports import export_download_url
from apps.lifecycle.models import Export
from apps.lifecycle.retention import retention_apply
from apps.tenants.models import Tenant
from tests.api.conftest import api, issue
from tests.lifecycle.test_archive import archive_of, with_member
from tests.lifecycle.test_archive_bad_input import tenant_row_edit
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
from tests.runs.test_engine import start


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def slug() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


def with_new_member(data: bytes, name: str, table: str, rows: list[dict]) -> bytes:
    """The archive with one more member, listed in its manifest with matching checksums."""
    content = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as new:
        manifest = json.loads(archive.read(MANIFEST))
        manifest["members"].append(
            {
                "name": name,
                "table": table,
                "rows": len(rows),
                "bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "columns": sorted({k for r in rows for k in r}),
            }
        )
        for info in archive.infolist():
            if info.filename != MANIFEST:
                new.writestr(info.filename, archive.read(info))
        new.writestr(name, content)
        new.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


def test_an_archive_cannot_smuggle_an_export_row_that_opens_another_workspaces_archive(acme):
    secret_id = uuid.uuid4()
    acme_file = f"exports/{acme.schema_name}/{secret_id}.zip"
    default_storage.save(acme_file, ContentFile(b"ACME-PRIVATE-ARCHIVE"))
    now = timezone.now().isoformat()
    row = {
        "id": str(uuid.uuid4()),
        "status": "succeeded",
        "rows_total": 1,
        "rows_done": 1,
        "file": acme_file,
        "size": 20,
        "sha256": "",
        "error": "",
        "created_by": "x",
        "created_at": now,
        "finished_at": now,
        "expires_at": "2999-01-01T00:00:00+00:00",
    }
    crafted = with_new_member(archive_of(acme)[0], "schema/lifecycle_export.ndjson", "lifecycle_export", [row])
    try:
        new = tenant_import(io.BytesIO(crafted), slug=slug())
    except ArchiveError:
        return  # refused: fine
    client = api(new, issue(new, role="owner"))
    with schema_context(new.schema_name):
        smuggled = Export.objects.filter(pk=row["id"]).first()
        if smuggled is None:
            return
        url = export_download_url(smuggled)  # the link the API would list for it
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""
    assert b"ACME-PRIVATE-ARCHIVE" not in body, "the imported workspace downloaded acme's stored archive"


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests_per_second_override", 0), ("burst_override", 5_000_000)],
    ids=["rps-0", "burst-above-max"],
)
def test_an_archive_with_a_limit_override_the_operator_could_not_set_is_refused(acme, field, value):
    crafted = with_member(
        archive_of(acme)[0], "public/tenants_tenant.ndjson", tenant_row_edit(lambda r: r.update({field: value}))
    )
    new_slug = slug()
    try:
        new = tenant_import(io.BytesIO(crafted), slug=new_slug)
    except ArchiveError as e:
        assert e.code == "archive_rows_invalid"
        return
    client = api(new, issue(new, role="owner"))
    client.raise_request_exception = False
    response = client.get("/api/v1/exports")
    assert response.status_code < 500, response.status_code
    pytest.fail(f"imported with {field}={value}, which tenant_limits_set refuses")


def test_an_archive_cannot_open_every_network_to_the_workspaces_http_tools(acme):
    crafted = with_member(
        archive_of(acme)[0],
        "public/tenants_tenant.ndjson",
        tenant_row_edit(lambda r: r.update(http_allowed_networks=["0.0.0.0/0", "::/0"])),
    )
    try:
        new = tenant_import(io.BytesIO(crafted), slug=slug(), keep_networks=True)
    except ArchiveError:
        return
    assert all(n.prefixlen > 0 for n in Tenant.objects.get(pk=new.pk).http_networks())


EXT_CONSTRUCTOR_SINGLE_ARG = 0


def _evil_blob(path: str) -> str:
    payload = ormsgpack.packb(ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, ormsgpack.packb(["os", "mkdir", path])))
    return "\\x" + payload.hex()


def _blobs_replaced(path: str, *, column: str):
    def change(content: bytes) -> bytes:
        out = []
        for line in content.splitlines():
            row = json.loads(line)
            row["type"], row[column] = "msgpack", _evil_blob(path)
            out.append(json.dumps(row).encode() + b"\n")
        return b"".join(out)

    return change


def test_a_crafted_archives_checkpoint_blob_runs_no_code_when_the_workspace_is_swept(
    fresh_tenant, django_db_blocker, tmp_path
):
    """A checkpoint value naming `os.mkdir` (a msgpack constructor extension) in an imported
    archive: LangGraph's permissive default would import and call it when the nightly retention
    pass loads the thread. The saver decodes only the types runs store."""
    canary = str(tmp_path / "canary-made-by-archive")
    with django_db_blocker.unblock():
        agent = deploy(fresh_tenant, FINANCE, TRIAGE)
        done = advance(start(fresh_tenant, agent, "Triage invoice INV-1001."), fresh_tenant.schema_name)
        assert done.status == "succeeded", done.message
        out = io.BytesIO()
        tenant_export(fresh_tenant, out)
        data = out.getvalue()
        data = with_member(data, "schema/checkpoint_blobs.ndjson", _blobs_replaced(canary, column="blob"))
        data = with_member(data, "schema/checkpoint_writes.ndjson", _blobs_replaced(canary, column="blob"))
        new = tenant_import(io.BytesIO(data), slug=f"r{uuid.uuid4().hex[:10]}")
        new = Tenant.objects.get(pk=new.pk)
        # The nightly pass, once the run is older than checkpoints_days (30 by default).
        counts = retention_apply(tenant=new, now=timezone.now() + timedelta(days=60))
    assert not os.path.exists(canary), "a blob of the imported archive made the platform call os.mkdir"
    assert counts["checkpoints"] > 0  # the thread was read and cut all the same


@pytest.mark.parametrize("counter", [0, 2], ids=["behind", "ahead"])
def test_an_archive_whose_document_does_not_count_its_versions_is_refused(acme, counter):
    """Publishing numbers a document's versions 1..n and keeps its counter at n: a counter behind
    would give the next publish a number taken (refused for good by the versions' unique key),
    one ahead a gap. Such an archive is refused, `archive_rows_invalid`, and nothing is made."""
    dev = api(acme, issue(acme, role="developer", scopes=("read", "write")))
    assert (
        dev.post("/api/v1/domains", json.dumps({"content": FINANCE}), content_type="application/json").status_code
        == 201
    )

    def counted(content: bytes) -> bytes:
        rows = [json.loads(line) for line in content.splitlines()]
        return b"".join(json.dumps({**row, "latest_number": counter}).encode() + b"\n" for row in rows)

    crafted = with_member(archive_of(acme)[0], "schema/catalog_document.ndjson", counted)
    new_slug = slug()
    with pytest.raises(ArchiveError) as refused:
        tenant_import(io.BytesIO(crafted), slug=new_slug)
    assert (refused.value.code, refused.value.member) == ("archive_rows_invalid", "schema/catalog_document.ndjson")
    assert not Tenant.objects.filter(slug=new_slug).exists()
