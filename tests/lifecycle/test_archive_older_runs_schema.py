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


def as_before_attempt(data: bytes) -> bytes:
    """The archive as the platform made it before runs 0008: `runs_run` rows without `attempt`,
    the member's columns without it, and neither runs.0008 nor runs.0009 in its schema version."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as new:
        manifest = json.loads(archive.read(MANIFEST))
        rows = [json.loads(line) for line in archive.read(RUNS).splitlines() if line]
        for row in rows:
            del row["attempt"]
        content = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
        entry = next(m for m in manifest["members"] if m["name"] == RUNS)
        entry.update(
            sha256=hashlib.sha256(content).hexdigest(),
            bytes=len(content),
            rows=len(rows),
            columns=[c for c in entry["columns"] if c != "attempt"],
        )
        runs = manifest["schema_version"]["tenant"]["runs"]
        runs[:] = [name for name in runs if not name.startswith(("0008_", "0009_"))]
        for info in archive.infolist():
            if info.filename != MANIFEST:
                new.writestr(info.filename, content if info.filename == RUNS else archive.read(info))
        new.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


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
