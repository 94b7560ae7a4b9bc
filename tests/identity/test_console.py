"""The console's Single sign-on page (settings.manage)."""

import pytest

from tests.conftest import client_for
from tests.identity.conftest import SECRET, configure, stored

PAGE = "/settings/sso/"
pytestmark = pytest.mark.usefixtures("loopback_allowed")


def test_an_owner_configures_sso_and_sees_only_that_a_secret_is_set(acme, idp):
    client = client_for(acme, "owner@acme.test")
    page = client.get(PAGE)
    assert page.status_code == 200 and b"Not configured." in page.content
    response = client.post(
        PAGE,
        {
            "issuer": idp.issuer,
            "client_id": "foundry",
            "client_secret": SECRET,
            "scopes": "openid email",
            "allowed_domains": "acme.test\nacme.example.com",
            "roles_claim": "groups",
            "role_map": "foundry-admins=admin\nfoundry-devs=developer",
            "jit_enabled": "on",
        },
    )
    assert response.status_code == 302 and response["Location"] == PAGE
    config = stored(acme)
    assert config.role_map == {"foundry-admins": "admin", "foundry-devs": "developer"}
    assert (config.allowed_domains, config.jit_enabled, config.sso_required) == (
        ["acme.example.com", "acme.test"],
        True,
        False,
    )
    listing = client.get(PAGE)
    assert SECRET.encode() not in listing.content
    assert b"Leave empty to keep the stored secret." in listing.content
    assert f"{idp.issuer}/jwks".encode() in listing.content


def test_refusals_show_the_problem_without_echoing_the_secret(acme, idp):
    client = client_for(acme, "owner@acme.test")
    form = {"issuer": idp.issuer + "/", "client_id": "foundry", "client_secret": SECRET}
    response = client.post(PAGE, form)
    assert response.status_code == 400
    assert b"must match exactly" in response.content and SECRET.encode() not in response.content
    response = client.post(PAGE, {**form, "issuer": idp.issuer, "roles_claim": "groups", "role_map": "x=owner"})
    assert response.status_code == 400 and b"owner is never granted" in response.content
    response = client.post(PAGE, {**form, "issuer": idp.issuer, "role_map": "no equals sign"})
    assert response.status_code == 400 and b"is not VALUE=ROLE" in response.content
    assert stored(acme) is None


def test_disable_asks_first_then_disables(acme, idp):
    client = client_for(acme, "owner@acme.test")
    assert client.get(f"{PAGE}disable/").status_code == 404
    configure(acme, idp)
    assert client.get(f"{PAGE}disable/").status_code == 200
    assert stored(acme) is not None
    assert client.post(f"{PAGE}disable/").status_code == 302
    assert stored(acme) is None


def test_an_admin_sees_sso_but_only_owners_change_it(acme, idp):
    configure(acme, idp)
    admin = client_for(acme, "admin@acme.test")
    page = admin.get(PAGE)
    assert page.status_code == 200 and b'data-testid="sso-owners-only"' in page.content
    assert b'data-testid="form-sso"' not in page.content
    posted = admin.post(PAGE, {"issuer": idp.issuer, "client_id": "mine", "client_secret": SECRET})
    assert posted.status_code == 403
    assert admin.post(f"{PAGE}disable/").status_code == 403
    assert stored(acme).client_id == "foundry-acme"


@pytest.mark.parametrize("email", ["developer@acme.test", "operator@acme.test", "viewer@acme.test"])
def test_other_roles_cannot_see_or_change_sso(acme, idp, email):
    configure(acme, idp)
    client = client_for(acme, email)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"issuer": idp.issuer, "client_id": "x", "client_secret": "y"}).status_code == 403
    assert client.post(f"{PAGE}disable/").status_code == 403
    assert stored(acme).client_id == "foundry-acme"


def test_the_navigation_shows_single_sign_on_to_admins_only(acme):
    assert b'href="/settings/sso/"' in client_for(acme, "admin@acme.test").get("/").content
    assert b'href="/settings/sso/"' not in client_for(acme, "developer@acme.test").get("/").content
