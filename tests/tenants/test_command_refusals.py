"""Operators' `manage.py` commands given bad input: a one-line CommandError, nothing written.

PRODUCT.md, "Quality bars": bad input gets a clear error and changes nothing; no input may produce
a traceback. For a management command that means a CommandError (one line, exit status 1), never
another exception, and nothing written when it is refused.

A lone surrogate in an argument is what a non-UTF-8 byte in argv becomes (os.fsdecode,
surrogateescape): `manage.py revoke_api_token acme "$(printf 'ab\\xff')"` from a Latin-1 shell.
"""

import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from apps.tenants.models import Tenant
from tests.conftest import ROOT, audit_events, server_env
from tests.lifecycle.test_archive_commands import export


def test_import_tenant_refuses_a_bad_base_url_before_importing(acme, tmp_path):
    """Refused before the workspace is created (its owners' links, printed after, would be lost
    with a traceback: after an admin's export, no owner could sign in)."""
    archive = tmp_path / "acme.zip"
    export("acme", archive)
    with pytest.raises(CommandError):
        call_command(
            "import_tenant",
            str(archive),
            "--slug",
            "rvcliimport",
            "--base-url",
            "http://{x}/",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert not Tenant.objects.filter(slug="rvcliimport").exists()


@pytest.mark.parametrize("slug", ["ac\udcffme", "ac\x00me"], ids=["lone-surrogate", "nul"])
def test_export_tenant_refuses_a_slug_no_workspace_has(acme, tmp_path, slug):
    """`export_tenant <slug> FILE` with a slug that is not text a slug can hold must say there is
    no such workspace (as every other command does through `tenant_get`), write no file and record
    nothing."""
    path = tmp_path / "out.zip"
    before = len(audit_events("public", action="tenant.exported"))
    with pytest.raises(CommandError):
        call_command("export_tenant", slug, str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert list(tmp_path.iterdir()) == []
    assert len(audit_events("public", action="tenant.exported")) == before


@pytest.mark.parametrize("prefix", ["ab\udcff", "ab\x00"], ids=["lone-surrogate", "nul"])
def test_revoke_api_token_refuses_a_prefix_no_token_has(acme, prefix):
    """`revoke_api_token acme <prefix>` with a prefix that is not text (a stray byte of a non-UTF-8
    shell, a NUL) must be "No token with prefix ..." (CommandError), as for any unknown prefix."""
    with pytest.raises(CommandError):
        call_command("revoke_api_token", "acme", prefix, stdout=io.StringIO())


@pytest.mark.parametrize(
    "arguments",
    [["export_tenant", "ac\udcffme", "/nonexistent/out.zip"], ["revoke_api_token", "acme", "ab\udcff"]],
    ids=["export_tenant", "revoke_api_token"],
)
def test_a_stray_byte_from_a_shell_is_a_one_line_error(db, arguments):
    """Through a real process (a non-UTF-8 byte in argv arrives as a lone surrogate): exit status 1
    and a one-line `CommandError: ...` on stderr, no Python traceback."""
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments], env=server_env(), cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")[-400:]


NUL_PATH = "/tmp/no\x00file"


@pytest.mark.parametrize(
    "arguments",
    [
        ["export_tenant", "acme", NUL_PATH],
        ["import_tenant", NUL_PATH, "--slug", "nulpath"],
        ["audit_export", "--tenant", "acme", "--output", NUL_PATH],
        ["audit_verify", "--tenant", "acme", "--checkpoints", NUL_PATH],
        ["usage_statement", "--tenant", "acme", "--output", NUL_PATH],
        [
            "configure_sso",
            "acme",
            "--issuer",
            "https://idp.invalid",
            "--client-id",
            "c",
            "--client-secret-file",
            NUL_PATH,
        ],
        ["celery_signing_keys", "--dir", NUL_PATH],
    ],
    ids=lambda arguments: arguments[0],
)
def test_a_file_argument_holding_a_nul_is_the_arguments_error(acme, arguments):
    """No path holds a NUL (a script's argument may): the command refuses the argument by name
    before it opens anything, as argparse refuses any other bad argument."""
    with pytest.raises(CommandError, match="not a file name"):
        call_command(*arguments, stdout=io.StringIO(), stderr=io.StringIO())
    assert not Tenant.objects.filter(slug="nulpath").exists()
