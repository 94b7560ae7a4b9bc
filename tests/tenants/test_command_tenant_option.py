"""An operator command's --tenant that names no workspace — empty (a script's unset variable),
blank, holding a NUL — is refused with a message; it never widens the command to the platform's
chain, every chain or the whole database."""

import io

import pytest
from django.core.management import CommandError, call_command

COMMANDS = {
    "audit_export": [],
    "audit_verify": [],
    "audit_erase_actor": ["user:1"],
    "backup": [],
    "usage_rollup": [],
    "usage_statement": [],
    "apply_retention": ["--dry-run"],
}


@pytest.mark.parametrize("slug", ["", " ", "ac\x00me", "public"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_tenant_option_naming_no_workspace_is_refused(acme, tmp_path, command, slug):
    out = io.StringIO()
    extra = ["--dir", str(tmp_path)] if command == "backup" else ["--output", str(tmp_path / "out")]
    if command not in ("backup", "audit_export", "usage_statement"):
        extra = []
    with pytest.raises(CommandError, match=r"(tenant|workspace) .*'"):
        call_command(command, *COMMANDS[command], "--tenant", slug, *extra, stdout=out)
    assert not list(tmp_path.iterdir())
    assert not out.getvalue()
