"""Management commands under bad input (found by the management-commands review): a clear error,
a non-zero exit, no traceback and nothing changed — an empty path (a script's unset variable) is
never the working directory, a --base-url is parsed not formatted, a missing password with no
terminal is an error; and an argument never reaches another workspace's data (a member's id given
to the platform chain's erasure)."""

import io
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.audit.models import AuditActor
from apps.audit.scope import rls_scope
from apps.audit.services import audit_record
from tests.conftest import ROOT, server_env, tenant_user
from tests.lifecycle.test_backup import backup_role_url  # noqa: F401 — a fixture


def _actor_row(tenant, actor_id):
    with schema_context("public"), rls_scope(tenant.pk):
        return AuditActor.objects.get(tenant_id=tenant.pk, actor_id=actor_id)


def test_audit_erase_actor_platform_refuses_a_member_id_and_erases_no_workspace_actor(acme, globex):
    """`audit_erase_actor --platform user:1` (the platform's chain; members appear there only as
    `user:1@tenant:N`) names nobody on the platform's chain, yet the command's sweep of every
    workspace's chain (meant for operators' ids, `operator:N`) erases the audit personal data of
    acme's member #1 *and* globex's member #1: two different people in two workspaces, irreversibly.
    Correct: with --platform, only operator ids reach workspaces' chains (refuse a `user:`/`token:` id,
    or sweep only for `operator:` ids); nothing of any workspace's actors changes."""
    for tenant, email in ((acme, "owner@acme.test"), (globex, "owner@globex.test")):
        owner = tenant_user(tenant, email)
        with schema_context(tenant.schema_name):
            audit_record(action="settings.changed", actor=owner)
        assert _actor_row(tenant, f"user:{owner.pk}").email == email
    assert tenant_user(acme, "owner@acme.test").pk == tenant_user(globex, "owner@globex.test").pk  # ids restart

    actor_id = f"user:{tenant_user(acme, 'owner@acme.test').pk}"
    with pytest.raises(CommandError, match="--tenant SLUG"):
        call_command("audit_erase_actor", "--platform", actor_id, stdout=io.StringIO())
    assert _actor_row(acme, actor_id).email == "owner@acme.test"
    assert _actor_row(globex, actor_id).email == "owner@globex.test"


@pytest.mark.parametrize("email", ["a\x00@b.test", "\udcff@b.test"], ids=["nul", "lone-surrogate"])
def test_erase_member_with_an_email_that_is_not_text_is_a_command_error(acme, email):
    """`erase_member acme EMAIL` with a NUL or a stray non-UTF-8 byte (lone surrogate) in EMAIL:
    member_erase's fallback for addresses stored under older rules queries
    `User.objects.filter(email=...)` with the raw text, which raises DataError / UnicodeEncodeError
    (a traceback). Correct: CommandError "Enter a valid email address.", nothing changed."""
    with pytest.raises(CommandError):
        call_command("erase_member", "acme", email, stdout=io.StringIO())


def _run(arguments, **kwargs):
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        env=server_env(),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        **kwargs,
    )


def test_erase_member_stray_byte_through_a_real_process_has_no_traceback(acme):
    """Same as above through `python manage.py erase_member acme $'\\xff@b.test'` (a Latin-1
    shell): exit status 1 with a one-line error, no Python traceback."""
    done = _run(["erase_member", "acme", os.fsdecode(b"\xff@b.test")])
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")[-600:]


def test_create_operator_without_password_and_no_terminal_has_no_traceback(db):
    """`manage.py create_operator EMAIL` with no --password, run from a script/cron with no
    terminal and stdin at EOF (</dev/null): getpass raises EOFError, a traceback. Correct: a
    one-line error ("no password given and no terminal to ask on"), exit status 1, nothing created."""
    done = _run(["create_operator", "rv-nopass@platform.test"], stdin=subprocess.DEVNULL, start_new_session=True)
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")[-600:]


def test_a_base_url_with_a_field_width_is_refused_without_being_formatted(acme):
    """`--base-url '{domain:>99999999999}'` (invite_owners, create_tenant, import_tenant):
    base_url_of_option formats the URL to check it and raises MemoryError (a traceback) instead of
    refusing it. Correct: CommandError naming --base-url (allow only a plain `{domain}` field)."""
    with pytest.raises(CommandError):
        call_command("invite_owners", "acme", "--base-url", "http://{domain:>99999999999}/", stdout=io.StringIO())


def test_backup_refuses_an_empty_dir(db, backup_role_url, tmp_path):  # noqa: F811 -- a fixture
    """`manage.py backup --tenant acme --dir "$BACKUP_DIR"` with the variable unset: `Path("")` is
    `.`, so the workspace's backup (members' password hashes, every row) is written into whatever
    directory the operator's shell or cron job is in, and --keep rotation then deletes older backups
    there. The command refuses an empty --tenant for exactly this reason (a script's unset variable).
    Correct: a one-line CommandError ("--dir: an empty path names no directory"), nothing written."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "backup", "--tenant", "acme", "--dir", ""],
        env=server_env(FOUNDRY_BACKUP_DATABASE_URL=backup_role_url),
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert list(tmp_path.iterdir()) == [], "a backup was written into the working directory"
    assert done.returncode == 2 and b"an empty path" in done.stderr  # argparse's usage error
    assert b"Traceback" not in done.stderr


def test_celery_signing_keys_refuses_an_empty_dir(tmp_path):
    """`manage.py celery_signing_keys --dir "$KEY_DIR"` with the variable unset creates the
    private signing key in the current directory (a checkout, a shared working dir) and exits 0.
    Correct: a one-line CommandError for an empty --dir, nothing written."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "celery_signing_keys", "--dir", ""],
        env=server_env(),
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert not (tmp_path / "celery-signing.key").exists()
    assert done.returncode == 2 and b"an empty path" in done.stderr
