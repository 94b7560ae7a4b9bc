"""With "SSO required", the break-glass owner is the workspace's only way in without the provider:
demoting or removing them is refused (`break_glass_owner`) until another is named or SSO is no
longer required (docs/sso.md: "passwords off for everyone but one active owner")."""

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import email_clean
from apps.identity.models import ExternalIdentity, SsoConfiguration
from tests.conftest import PASSWORD
from tests.identity.conftest import configure

pytestmark = pytest.mark.usefixtures("loopback_allowed")

OIDC_BACKEND = "apps.identity.oidc.TenantOIDCBackend"


def _second_owner(acme, idp) -> Client:
    """Another owner, signed in through the provider (a password session ends: SSO is required)."""
    with schema_context(acme.schema_name):
        second = User.objects.create_user("second-owner@acme.test", PASSWORD, role=Role.OWNER)
    client = Client(HTTP_HOST="acme.localhost")
    with schema_context(acme.schema_name):  # as a sign-in through the provider links it
        ExternalIdentity.objects.create(issuer=idp.issuer, subject="sub-second-owner", user=second)
    with schema_context(acme.schema_name):
        client.force_login(second, backend=OIDC_BACKEND)
    return client


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_the_break_glass_owner_cannot_be_taken_away_while_sso_is_required(acme, idp, change):
    second = _second_owner(acme, idp)
    configure(acme, idp, sso_required=True, break_glass_email="owner@acme.test")
    with schema_context(acme.schema_name):
        glass = User.objects.get(email="owner@acme.test")
    if change == "demote":
        response = second.post(f"/members/{glass.pk}/role/", {"role": "admin"})
    else:
        response = second.post(f"/members/{glass.pk}/remove/")
    assert response.status_code == 400
    assert b"break-glass owner" in response.content
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
        assert User.objects.filter(email=config.break_glass_email, role=Role.OWNER, is_active=True).exists()
    password = Client(HTTP_HOST="acme.localhost").post("/login/", {"username": "owner@acme.test", "password": PASSWORD})
    assert password.status_code == 302, "the break-glass password sign-in works"


def test_once_sso_is_no_longer_required_the_owner_may_be_demoted(acme, idp):
    second = _second_owner(acme, idp)
    configure(acme, idp, sso_required=False)
    with schema_context(acme.schema_name):
        glass = User.objects.get(email="owner@acme.test")
    response = second.post(f"/members/{glass.pk}/role/", {"role": "admin"})
    assert response.status_code in (200, 302)
    with schema_context(acme.schema_name):
        assert User.objects.get(pk=glass.pk).role == Role.ADMIN


@pytest.mark.parametrize(
    "typed",
    ["boss@xn--bcher-kva.test", "boss@bu\u0308cher.test"],  # the A-label spelling; the decomposed (NFD) ü
    ids=["a-label", "nfd"],
)
def test_the_break_glass_owner_is_found_by_any_spelling_of_their_address(acme, idp, typed):
    """docs/roles.md: "A member is one email address in one spelling: lowercase, accents composed,
    the domain in U-labels (a@xn--bcher-kva.test is a@bücher.test, and signs in with either)".
    The break-glass owner named by another spelling of their address is found, and stored in the
    member's spelling, which sign-in compares."""
    with schema_context(acme.schema_name):
        boss = User.objects.create_user(
            email_clean("boss@bücher.test"), "correct-horse-battery-staple", role=Role.OWNER
        )
    config = configure(acme, idp, sso_required=True, break_glass_email=typed)
    assert config.break_glass_email == boss.email, "stored as the member's spelling, which sign-in compares"
