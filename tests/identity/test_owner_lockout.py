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
from apps.identity.login import SsoLoginFailed, sso_login_resolve
from apps.identity.models import ExternalIdentity, SsoConfiguration
from apps.identity.services import sso_disable
from foundry.errors import ServiceError
from tests.conftest import client_for, tenant_user
from tests.identity.conftest import OidcServer, configure, stored

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


# --- the last owner who can sign in, as the SSO settings stand (apps/accounts/services.py
# `_owners_remaining_without` with identity's `sign_in_left`). An owner who joined through SSO was
# counted whatever the settings say of them now: found by a review, the last owner who could sign
# in stepped down, leaving owners nobody could let in again.


def _sso_joined_owner(acme, issuer: str, email: str = "sso-owner@acme.test") -> User:
    """An owner who joined by signing in through the provider: no password, a sign-in made."""
    with schema_context(acme.schema_name):
        owner = User.objects.create_user(email, None, role=Role.OWNER)
        owner.last_login = timezone.now()
        owner.save(update_fields=["last_login"])
        ExternalIdentity.objects.create(issuer=issuer, subject="sub-sso-owner", user=owner, email=email)
        return owner


def _sso_refusal(acme, owner: User) -> str:
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
        claims = {"sub": "sub-sso-owner", "email": owner.email, "email_verified": True}
        with pytest.raises(SsoLoginFailed) as refused:
            sso_login_resolve(config, claims)
        return refused.value.code


def _stepping_down_refused(acme, role: str) -> None:
    """owner@acme.test, the one owner with a password, making themselves `role`: 400 last_owner."""
    owner = tenant_user(acme, "owner@acme.test")
    response = client_for(acme, "owner@acme.test").post(f"/members/{owner.pk}/role/", {"role": role})
    assert response.status_code == 400, "the only owner who can sign in stepped down"
    assert b"last_owner" in response.content
    assert tenant_user(acme, "owner@acme.test").role == Role.OWNER


def test_the_last_owner_who_can_sign_in_cannot_step_down_after_sso_moved_to_another_issuer(acme, idp):
    """Owner A (password) and owner B (joined through SSO at issuer 1). A moves SSO to issuer 2
    (allowed: A has a password); B's identity is issuer 1's, refused at issuer 2. A making
    themselves an admin is refused: B counted as an owner who could sign in."""
    configure(acme, idp)
    sso_owner = _sso_joined_owner(acme, idp.issuer)
    second = OidcServer()
    try:
        configure(acme, second)  # as owner@acme.test, who has a password
    finally:
        second.close()
    assert _sso_refusal(acme, sso_owner) == "identity_conflict"

    _stepping_down_refused(acme, "admin")


def test_the_last_owner_who_can_sign_in_cannot_step_down_when_the_other_owners_domain_is_no_longer_allowed(acme, idp):
    """Owner B joined through SSO with an address at partner.test; the allowed domains become
    acme.test only, refusing B. A stepping down is refused."""
    configure(acme, idp)
    sso_owner = _sso_joined_owner(acme, idp.issuer, email="sso-owner@partner.test")
    configure(acme, idp, allowed_domains=["acme.test"])
    assert _sso_refusal(acme, sso_owner) == "email_domain_refused"

    _stepping_down_refused(acme, "viewer")
