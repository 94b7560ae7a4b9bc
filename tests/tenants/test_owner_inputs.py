"""Owner and operator inputs of provisioning: a byte that is not UTF-8 (from a shell in another
encoding) in an email or password is a CommandError with nothing created, and the owner's
address is judged and stored as email_clean has it (a Kelvin sign is refused, not lowered to k)."""

import pytest
from django.core.management import CommandError, call_command

from apps.tenants.models import Tenant


# A non-UTF-8 byte in argv reaches Python as a lone surrogate (surrogateescape), as for --name in
# tests/tenants/test_operator_commands.py: a CommandError, nothing created (no UnicodeEncodeError
# from the database driver or the password hasher).
@pytest.mark.parametrize(
    "extra",
    [
        ["--owner-email", "bill@initech.test\udce9"],
        ["--owner-email", "bill@initech\udce9.test"],
        ["--owner-email", "bill@initech.test", "--owner-password", "Caf\udce9-horse-battery-staple"],
    ],
    ids=["email-tail", "email-domain", "password"],
)
def test_create_tenant_with_owner_input_that_is_not_utf8_is_a_command_error(db, extra):
    with pytest.raises(CommandError):
        call_command("create_tenant", "initech", "--name", "Initech", *extra)
    assert not Tenant.objects.filter(slug="initech").exists()


@pytest.mark.parametrize(
    ("email", "password"),
    [("ops@platform.test\udce9", "horse-battery-staple-9"), ("ops2@platform.test", "Caf\udce9-horse-battery-staple")],
    ids=["email", "password"],
)
def test_create_operator_with_input_that_is_not_utf8_is_a_command_error(db, email, password):
    from django_tenants.utils import schema_context

    from apps.accounts.models import User

    with pytest.raises(CommandError):
        call_command("create_operator", email, "--password", password)
    with schema_context("public"):
        assert not User.objects.filter(email__startswith="ops").exists()


def test_provisioning_refuses_an_owner_email_that_email_clean_refuses(db):
    """email_clean (apps/accounts/services.py) refuses addresses that fold into another one, and
    member_add stores only what it returns; provisioning judges the owner's address alike."""
    from django.core.exceptions import ValidationError

    from apps.accounts.services import email_clean
    from apps.tenants.services import tenant_provision

    owner_email = "\u212aim@kelvin.test"  # KELVIN SIGN: lowercases to an ASCII "k" (another mailbox)
    with pytest.raises(ValidationError):
        email_clean(owner_email)  # the platform's own rule
    with pytest.raises(ValidationError) as exc:
        tenant_provision(slug="kelvin", name="Kelvin", owner_email=owner_email)
    assert [e.code for e in exc.value.error_dict["owner_email"]] == ["email_invalid"]
    assert not Tenant.objects.filter(slug="kelvin").exists()


def test_the_operator_console_refuses_a_kelvin_sign_owner_email(operator_client):
    response = operator_client.post(
        "/tenants/new/", {"slug": "kelvin", "name": "Kelvin", "plan": "free", "owner_email": "\u212aim@kelvin.test"}
    )
    assert response.status_code == 400
    assert "owner_email" in response.context["form"].errors
    assert not Tenant.objects.filter(slug="kelvin").exists()
