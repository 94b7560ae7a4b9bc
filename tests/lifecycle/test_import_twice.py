"""A workspace imported, then exported and imported again (moved on once more): its chain keeps
every checkpoint signed along the way, and verifies with them (docs/export.md, "Import": imported
events keep their signed checkpoints; docs/audit.md)."""

import io
import uuid

import pytest

from apps.audit.export import ExportRange, chain_head, export_lines, export_verify
from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.audit.verify import audit_verify
from apps.lifecycle.archive import tenant_export, tenant_import
from tests.audit.conftest import SIGNING_SEED
from tests.lifecycle.test_backup import (
    unblocked,  # noqa: F401 — fixture
    workspace,  # noqa: F401 — fixture
)


@pytest.fixture
def signing(settings):
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = [f"test1:{SIGNING_SEED}"]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []


def _moved(tenant):
    out = io.BytesIO()
    tenant_export(tenant, out)
    return tenant_import(io.BytesIO(out.getvalue()), slug=f"m{uuid.uuid4().hex[:10]}")


def test_a_copy_of_an_imported_workspace_verifies_the_checkpoints_its_source_signed(workspace, signing):  # noqa: F811
    """B, an import of A, signs its chain under B (its events hashed under A's id); C, an import of
    B, keeps those checkpoints, and its chain verifies with them, in the database and in its export."""
    assert audit_checkpoint_sign(workspace.pk) is not None  # A's own
    copy = _moved(workspace)
    audit_record(action="thing.after_import", actor="test", chain=copy.pk)
    assert audit_checkpoint_sign(copy.pk) is not None  # signed under B
    assert audit_verify(copy.pk).ok

    second = _moved(copy)
    result = audit_verify(second.pk)
    assert result.ok, result.summary()
    assert result.checkpoints >= 2
    lines = [
        line
        for text in export_lines(ExportRange(second.pk, 0, chain_head(second.pk)), fmt="jsonl")
        for line in text.splitlines()
    ]
    offline = export_verify(lines)
    assert offline.ok, offline.summary()
