"""`manage.py audit_export` records an export (`audit.export`) only once its files are open: an
unwritable --output or --checkpoints is a CommandError and no event. A --tenant naming no
tenant is a CommandError too, never the platform's chain."""

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import audit_events


def test_an_export_whose_output_cannot_be_opened_is_not_recorded_as_done(acme, tmp_path):
    """docs/audit-siem.md: each export is recorded (`audit.export`, with its range)."""
    before = len(audit_events(acme.schema_name, action="audit.export"))
    with pytest.raises(CommandError):
        call_command("audit_export", tenant=acme.slug, output=tmp_path / "missing-dir" / "audit.jsonl")
    assert len(audit_events(acme.schema_name, action="audit.export")) == before


@pytest.mark.parametrize("slug", ["", " ", "ac\x00me"])
def test_a_tenant_slug_naming_no_tenant_is_refused_not_read_as_the_platform_chain(acme, tmp_path, slug):
    """`--tenant "$SLUG"` with an unset variable exported the platform's chain, which records
    events about every workspace, to a file meant for one workspace's SIEM (a NUL: a traceback)."""
    output = tmp_path / "audit.jsonl"
    with pytest.raises(CommandError, match="No tenant with slug"):
        call_command("audit_export", "--tenant", slug, "--output", str(output))
    assert not output.exists()
