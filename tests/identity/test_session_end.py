"""A session the workspace's sign-in rules stop admitting is ended for good (docs/sso.md,
"Signing in"): disabling SSO, moving it or narrowing its domains, and requiring it of password
sessions delete the sessions refused, so changing the rule back brings none of them back."""

import pytest
from django_tenants.utils import schema_context

from apps.identity.oidc import sso_config_forget
from apps.identity.services import sso_disable
from tests.identity.test_login import ACCOUNTS, client_config, login, sso

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def provider(oidc_provider_factory, acme):
    return oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)


def _forget(tenant) -> None:
    with schema_context(tenant.schema_name):
        sso_config_forget()


@pytest.mark.parametrize("change", ["disabled_then_enabled", "domain_narrowed_then_restored"])
def test_an_ended_sso_session_does_not_come_back_when_sso_admits_it_again(acme, provider, change):
    """Re-enabling SSO, or allowing the domain again, needs a new sign-in at the provider (whose
    account may have been disabled meanwhile: disabling SSO during an incident ends a stolen
    session for good)."""
    sso(acme, provider)
    client, _response = login(acme, provider, "ada")
    assert client.get("/members/").status_code == 200
    if change == "disabled_then_enabled":
        with schema_context(acme.schema_name):
            sso_disable(actor="test")
    else:
        sso(acme, provider, allowed_domains=["acme-subsidiary.test"])
    _forget(acme)
    assert client.get("/members/").status_code == 302  # ended, as documented
    sso(acme, provider)  # the same configuration as before, saved again
    _forget(acme)
    response = client.get("/members/")
    assert response.status_code == 302, "the ended SSO session was signed in again without a new sign-in"


def test_a_password_session_ended_by_sso_required_does_not_come_back(acme, provider):
    """With SSO required, password sessions end; no longer requiring it brings none back."""
    from django.test import Client

    from tests.conftest import PASSWORD

    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "admin@acme.test", "password": PASSWORD}).status_code == 302
    assert client.get("/members/").status_code == 200
    sso(acme, provider, sso_required=True, break_glass_email="owner@acme.test")
    _forget(acme)
    assert client.get("/members/").status_code == 302  # ended, as documented
    sso(acme, provider, sso_required=False)
    _forget(acme)
    assert client.get("/members/").status_code == 302, "the ended password session was signed in again"


def test_an_owner_requiring_sso_ends_their_own_password_session_cleanly(acme, provider):
    """The owner saving the settings holds one of the sessions ended: the save still answers
    its redirect (the request's session is ended with the others), and that session is over."""
    from django.test import Client

    from apps.accounts.models import User
    from apps.accounts.permissions import Role
    from tests.conftest import PASSWORD
    from tests.identity.conftest import SECRET

    with schema_context(acme.schema_name):
        User.objects.create_user("second-owner@acme.test", PASSWORD, role=Role.OWNER)
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "second-owner@acme.test", "password": PASSWORD}).status_code == 302
    form = {
        "issuer": provider.issuer,
        "client_id": f"foundry-{acme.slug}",
        "client_secret": SECRET,
        "scopes": "openid email",
        "allowed_domains": "acme.test",
        "jit_enabled": "on",
        "sso_required": "on",
        "break_glass_email": "owner@acme.test",
    }
    response = client.post("/settings/sso/", form)
    assert response.status_code == 302, response.content[:300]
    assert client.get("/members/").status_code == 302  # signed out: SSO is required of them now
