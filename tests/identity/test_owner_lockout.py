"""An owner must still be able to get in once single sign-on is gone or moved (docs/sso.md): an
owner who joined through SSO has no password and cannot be sent a link (`invite_not_pending`), so
disabling SSO, moving it to another issuer, or naming such an owner break-glass is refused while
no active owner signs in with a password."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove
from apps.identity.models import ExternalIdentity
from apps.identity.services import sso_disable
from foundry.errors import ServiceError
from tests.conftest import client_for
from tests.identity.conftest import configure, stored

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def _sso_only_owner(acme, idp) -> User:
    """An owner who joined by signing in through the provider: no password, a sign-in made."""
    with schema_context(acme.schema_name):
        owner = User.objects.create_user("sso-owner@acme.test", None, role=Role.OWNER)
        owner.last_login = timezone.now()
        owner.save(update_fields=["last_login"])
        ExternalIdentity.objects.create(issuer=idp.issuer, subject="sub-sso-owner", user=owner)
        assert owner.has_joined and not owner.has_usable_password()
        return owner


def _password_owner_removed(acme, by: User) -> None:
    with schema_context(acme.schema_name):
        member_remove(actor=by, member=User.objects.get(email="owner@acme.test"))  # by is a joined owner


def test_sso_is_not_disabled_while_no_owner_has_a_password(acme, idp):
    configure(acme, idp)
    sso_owner = _sso_only_owner(acme, idp)
    _password_owner_removed(acme, sso_owner)
    with schema_context(acme.schema_name), pytest.raises(ServiceError) as refused:
        sso_disable(actor=sso_owner)
    assert (refused.value.code, refused.value.status) == ("owner_password_required", 409)
    # In the console: the settings page, saying why.
    page = client_for(acme, sso_owner.email).post("/settings/sso/disable/")
    assert page.status_code == 409 and b"every owner joined through single sign-on" in page.content
    assert stored(acme) is not None


def test_sso_is_not_moved_to_another_issuer_while_no_owner_has_a_password(acme, idp):
    configure(acme, idp)
    sso_owner = _sso_only_owner(acme, idp)
    _password_owner_removed(acme, sso_owner)
    with pytest.raises(ValidationError) as refused:
        configure(acme, idp, email=sso_owner.email, issuer="https://login.elsewhere.example")
    assert [e.code for e in refused.value.error_dict["issuer"]] == ["owner_password_required"]
    assert stored(acme).issuer == idp.issuer
    # The same settings on the same issuer are saved: nobody's identity moves.
    configure(acme, idp, email=sso_owner.email, jit_enabled=False)
    assert stored(acme).jit_enabled is False


def test_with_an_owner_who_has_a_password_sso_is_disabled(acme, idp):
    configure(acme, idp)
    sso_owner = _sso_only_owner(acme, idp)
    with schema_context(acme.schema_name):
        sso_disable(actor=sso_owner)  # owner@acme.test still signs in with a password
    assert stored(acme) is None


def test_the_break_glass_owner_must_have_a_password(acme, idp):
    """The break-glass owner is the one password way in while SSO is required."""
    sso_owner = _sso_only_owner(acme, idp)
    with pytest.raises(ValidationError) as refused:
        configure(acme, idp, sso_required=True, break_glass_email=sso_owner.email)
    assert [e.code for e in refused.value.error_dict["break_glass_email"]] == ["break_glass_no_password"]
    assert stored(acme) is None
