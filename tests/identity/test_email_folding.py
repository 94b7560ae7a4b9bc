"""SSO linking by email never folds a different address onto an existing member: an address with
a non-ASCII letter that lowercases into ASCII is refused (`email_invalid`), at sign-in through the
provider and when a member is added."""

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import email_clean
from apps.identity.models import ExternalIdentity
from tests.conftest import PASSWORD
from tests.identity.test_login import client_config, login, refused, sso

pytestmark = pytest.mark.usefixtures("loopback_allowed")

KELVIN = "\u212a"  # KELVIN SIGN: "\u212a".lower() == "k"


def test_an_idp_address_with_a_kelvin_sign_does_not_take_over_the_member_with_a_plain_k(acme, oidc_provider_factory):
    """ "\u212aate@acme.test" is another account at the provider (its own subject); `.lower()`
    alone would make it kate@acme.test, an owner with a password, and sign its holder in as her."""
    with schema_context(acme.schema_name):
        User.objects.create_user("kate@acme.test", PASSWORD, role=Role.OWNER)
    provider = oidc_provider_factory(
        clients=[client_config(acme)],
        accounts={
            "mallory": {
                "sub": "sub-mallory",
                "email": f"{KELVIN}ate@acme.test",
                "email_verified": True,
                "name": "Mallory",
                "groups": [],
            }
        },
    )
    sso(acme, provider)  # just-in-time sign-up on: an unknown address would be made a member
    client, response = login(acme, provider, "mallory")
    refused(response, "email_invalid")
    assert "_auth_user_id" not in client.session
    with schema_context(acme.schema_name):
        assert not ExternalIdentity.objects.filter(subject="sub-mallory").exists()
        assert User.objects.filter(email__iexact="kate@acme.test").count() == 1


@pytest.mark.parametrize("address", [f"{KELVIN}ate@acme.test", f"ops@{KELVIN}ey.test"])
def test_a_member_address_folding_into_ascii_is_refused(address):
    with pytest.raises(ValidationError) as refused_:
        email_clean(address)
    assert refused_.value.code == "email_invalid"


def test_addresses_in_ascii_are_lowercased_as_before():
    assert email_clean("  Kate@ACME.test ") == "kate@acme.test"
