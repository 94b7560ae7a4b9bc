"""A sign-in racing a change that ends sessions (a suspension, a change of the sign-in rules)
leaves no session behind: the change is found done, or waits for the sign-in, and ends its
session with the others (member_signing_in)."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts import views as account_views
from apps.identity.oidc import sso_config_forget
from apps.tenants.models import Tenant
from apps.tenants.routing import route_cache_clear
from apps.tenants.services import tenant_resume, tenant_suspend
from tests.conftest import PASSWORD
from tests.identity.conftest import loopback_allowed  # noqa: F401
from tests.identity.test_login import provider, sso  # noqa: F401
from tests.providers.conftest import encryption_key  # noqa: F401

pytestmark = pytest.mark.usefixtures("loopback_allowed", "encryption_key")


def test_a_password_sign_in_completing_while_the_workspace_is_suspended_opens_nothing_after_resume(acme, monkeypatch):
    """Suspending a workspace deletes its sessions; once resumed, everyone signs in again
    (docs/tenancy.md). A password sign-in whose credentials were checked as the operator
    suspended it leaves no session that signs the member in after the resume."""
    real = account_views.member_signing_in

    def suspended_meanwhile(user):
        with schema_context("public"):  # the operator, in another request, at this very moment
            tenant_suspend(tenant=Tenant.objects.get(pk=acme.pk), actor="test")
        return real(user)

    monkeypatch.setattr(account_views, "member_signing_in", suspended_meanwhile)
    client = Client(HTTP_HOST="acme.localhost")
    client.post("/login/", {"username": "viewer@acme.test", "password": PASSWORD})
    monkeypatch.setattr(account_views, "member_signing_in", real)

    with schema_context("public"):
        tenant_resume(tenant=Tenant.objects.get(pk=acme.pk), actor="test")
    route_cache_clear()
    with schema_context(acme.schema_name):
        left = Session.objects.count()
    page = client.get("/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")
    assert left == 0


def _forget(tenant) -> None:
    with schema_context(tenant.schema_name):
        sso_config_forget()


def test_a_password_sign_in_completing_as_sso_becomes_required_does_not_come_back_when_it_is_lifted(
    acme,
    provider,  # noqa: F811
    monkeypatch,
):
    """Requiring SSO ends the password sessions it refuses: gone, not merely refused until the rule
    is lifted (docs/sso.md). So does it a password sign-in whose credentials were checked just
    before the owner saved "SSO required"."""
    sso(acme, provider)
    _forget(acme)
    real = account_views.member_signing_in

    def sso_required_meanwhile(user):
        # The owner, in another request, at this very moment.
        sso(acme, provider, sso_required=True, break_glass_email="owner@acme.test")
        _forget(acme)
        return real(user)

    monkeypatch.setattr(account_views, "member_signing_in", sso_required_meanwhile)
    client = Client(HTTP_HOST="acme.localhost")
    client.post("/login/", {"username": "admin@acme.test", "password": PASSWORD})
    monkeypatch.setattr(account_views, "member_signing_in", real)
    assert client.get("/members/").status_code == 302  # refused while SSO is required, as documented
    sso(acme, provider, sso_required=False)
    _forget(acme)
    assert client.get("/members/").status_code == 302
