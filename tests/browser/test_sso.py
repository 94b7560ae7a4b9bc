"""Single sign-on in a real browser: a workspace admin's IdP (a real OpenID provider on
loopback), the sign-in button, the provider's form, back in the console with the role the
member's groups map to; sign-out ends the session at the provider too."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.identity.conftest import configure_committed

pytestmark = pytest.mark.browser


def test_a_member_signs_in_through_the_workspace_idp_and_out_again(
    page: Page,
    live_port,
    fresh_tenant,
    oidc_provider_factory,
    django_db_blocker,
):
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    idp = oidc_provider_factory(
        clients=[
            {
                "client_id": f"foundry-{slug}",
                "client_secret": "browser-test-secret-0123456789",
                "redirect_uris": [f"{base}/sso/callback/"],
                "post_logout_redirect_uris": [f"{base}/login/"],
                "audience": f"api://foundry-{slug}",
            }
        ],
        accounts={
            "ada": {
                "sub": "ada-1",
                "email": f"ada@{slug}.test",
                "email_verified": True,
                "name": "Ada Lovelace",
                "groups": ["foundry-admins"],
            }
        },
    )
    configure_committed(fresh_tenant, idp, django_db_blocker, client_secret="browser-test-secret-0123456789")

    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_test_id("sso-login").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(idp.issuer)}/interaction/"))
    page.locator("#login").fill("ada")
    page.locator("#submit").click()

    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_test_id("current-user")).to_contain_text(f"ada@{slug}.test · Admin")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login/"))
    page.goto(f"{base}/members/")
    expect(page).to_have_url(re.compile(r"/login/"))
