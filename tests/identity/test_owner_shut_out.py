"""SSO settings may not shut every owner who has joined out (docs/sso.md, docs/roles.md: "a
workspace always keeps at least one owner who has joined"). Moving the issuer or disabling SSO
was refused (`owner_password_required`), but allowed domains excluding the only owner's address
were saved: that owner joined through SSO (no password, so no link can be sent, and the
operator's `invite_owners` refuses once an owner joined), their session ended, their next sign-in
was `email_domain_refused`, and nobody could ever change the settings back. Found by the
identities review."""

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove
from apps.identity.models import SsoConfiguration
from apps.identity.services import sign_in_left
from tests.identity.conftest import configure, stored
from tests.identity.test_owner_lockout import _sso_only_owner

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def _only_owner_joined_through_sso(acme, idp) -> User:
    owner = _sso_only_owner(acme, idp)
    with schema_context(acme.schema_name):
        member_remove(actor=owner, member=User.objects.get(email="owner@acme.test"))  # the password owner
        assert list(User.objects.filter(role=Role.OWNER).values_list("email", flat=True)) == [owner.email]
    return owner


def test_allowed_domains_that_shut_out_every_owner_are_refused(acme, idp):
    configure(acme, idp)
    owner = _only_owner_joined_through_sso(acme, idp)

    with pytest.raises(ValidationError) as refused:
        configure(acme, idp, email=owner.email, allowed_domains=["partner.test"])
    assert [e.code for e in refused.value.error_dict["allowed_domains"]] == ["owner_shut_out"]
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
        owner.refresh_from_db()
        can_sign_in = sign_in_left(owner, config)
    assert can_sign_in, (
        f"allowed domains {stored(acme).allowed_domains} saved: the workspace's only owner "
        f"({owner.email}, joined through SSO, no password) can never sign in again"
    )


def test_allowed_domains_keeping_an_owners_domain_are_saved(acme, idp):
    configure(acme, idp)
    owner = _only_owner_joined_through_sso(acme, idp)
    configure(acme, idp, email=owner.email, allowed_domains=["partner.test", "acme.test"])
    assert sorted(stored(acme).allowed_domains) == ["acme.test", "partner.test"]
