"""The tenants app's management commands given bad arguments end in a CommandError (a clean
message), never a traceback, and never after half the work is done: a --base-url with a typo is
refused before the workspace is created (its invitation link is printed once), a stray byte of a
shell that is not UTF-8 (a lone surrogate) is refused, and so is a certificate lifetime no
certificate can have."""

import pytest
from django.core.management import CommandError, call_command

from apps.tenants.models import Tenant


@pytest.mark.parametrize("base_url", ["http://{host}:8000/", "http://{0}/", "http://{domain.x}/", "http://{domain"])
def test_create_tenant_with_a_bad_base_url_is_refused_before_anything_is_created(db, base_url):
    with pytest.raises(CommandError):
        call_command(
            "create_tenant",
            "initech",
            "--name",
            "Initech",
            "--owner-email",
            "bill@initech.test",
            "--base-url",
            base_url,
        )
    assert not Tenant.objects.filter(slug="initech").exists()


def test_create_tenant_with_a_name_that_is_not_utf8_is_a_command_error(db):
    # A non-UTF-8 byte in argv reaches Python as a lone surrogate (os.fsdecode, surrogateescape):
    # `manage.py create_tenant initech --name "$(printf 'Caf\xe9')" ...` from a Latin-1 shell.
    with pytest.raises(CommandError):
        call_command("create_tenant", "initech", "--name", "Caf\udce9", "--owner-email", "bill@initech.test")
    assert not Tenant.objects.filter(slug="initech").exists()


@pytest.mark.parametrize("command", ["suspend_tenant", "resume_tenant", "tenant_limits", "delete_tenant"])
def test_a_slug_that_is_not_utf8_is_a_command_error(db, command):
    with pytest.raises(CommandError):
        call_command(command, "acm\udce9")


@pytest.mark.parametrize("days", ["-1", "1000000000"])
def test_celery_signing_keys_refuses_an_impossible_lifetime_with_a_message(tmp_path, days):
    with pytest.raises(CommandError):
        call_command("celery_signing_keys", "--dir", str(tmp_path / "keys"), "--days", days)
