"""An archive made before a column was added to runs_run imports, the column taking its default
(docs/export.md, "Import")."""

import hashlib
import io
import json
import uuid
import zipfile

from django_tenants.utils import schema_context

from apps.lifecycle.archive import MANIFEST, tenant_import
from apps.runs.models import Run
from tests.lifecycle.test_archive import archive_of
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
from tests.runs.test_engine import start

RUNS = "schema/runs_run.ndjson"


def as_older(data: bytes, member: str, columns: tuple[str, ...], app: str, since: tuple[str, ...]) -> bytes:
    """The archive as the platform made it before migrations `since` of `app` (name prefixes):
    `member`'s rows and column list without `columns`, and those migrations not in its schema
    version; its checksum, size and row count made to match."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as new:
        manifest = json.loads(archive.read(MANIFEST))
        rows = [json.loads(line) for line in archive.read(member).splitlines() if line]
        for row in rows:
            for column in columns:
                del row[column]
        content = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
        entry = next(m for m in manifest["members"] if m["name"] == member)
        entry.update(
            sha256=hashlib.sha256(content).hexdigest(),
            bytes=len(content),
            rows=len(rows),
            columns=[c for c in entry["columns"] if c not in columns],
        )
        applied = manifest["schema_version"]["tenant"][app]
        applied[:] = [name for name in applied if not name.startswith(since)]
        for info in archive.infolist():
            if info.filename != MANIFEST:
                new.writestr(info.filename, content if info.filename == member else archive.read(info))
        new.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


def as_before_attempt(data: bytes) -> bytes:
    """Before runs 0008: `runs_run` rows without `attempt`, and neither runs.0008 nor runs.0009."""
    return as_older(data, RUNS, ("attempt",), "runs", ("0008_", "0009_"))


def test_an_archive_made_before_the_attempt_column_imports_with_its_default(acme):
    """Columns the archive lacks take their defaults: `attempt` has one in the database too
    (db_default), so the import's INSERT of the archive's columns writes 0, not NULL."""
    run = start(acme, deploy(acme, FINANCE, TRIAGE), "Triage invoice INV-1001.")
    advance(run, "acme")
    data, _ = archive_of(acme)
    older = as_before_attempt(data)
    slug = f"r{uuid.uuid4().hex[:10]}"
    tenant = tenant_import(io.BytesIO(older), slug=slug)
    with schema_context(tenant.schema_name):
        imported = Run.objects.get(pk=run.pk)
    assert imported.attempt == 0
