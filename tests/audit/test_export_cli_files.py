"""`manage.py audit_export` records an export (`audit.export`) only once its files are open: an
unwritable --output or --checkpoints is a CommandError and no event."""

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import audit_events


def test_an_export_whose_output_cannot_be_opened_is_not_recorded_as_done(acme, tmp_path):
    """docs/audit-siem.md: each export is recorded (`audit.export`, with its range)."""
    before = len(audit_events(acme.schema_name, action="audit.export"))
    with pytest.raises(CommandError):
        call_command("audit_export", tenant=acme.slug, output=tmp_path / "missing-dir" / "audit.jsonl")
    assert len(audit_events(acme.schema_name, action="audit.export")) == before
