import re
import uuid

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from apps.accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_login_dashboard_members(page: Page, live_port, fresh_tenant, django_db_blocker):
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/", f"owner@{slug}.test")

    expect(page.get_by_role("heading", level=1)).to_have_text(fresh_tenant.name)
    expect(page.get_by_test_id("member-count")).to_have_text("2")
    expect(page.get_by_test_id("current-user")).to_contain_text(f"owner@{slug}.test · Owner")
    expect(page.get_by_role("cell", name="auth.login")).to_be_visible()

    page.get_by_role("link", name="Members").click()
    expect(page).to_have_url(f"{base}/members/")
    rows = page.locator("#members tr")
    expect(rows).to_have_count(2)

    # Change the viewer's role in place (htmx): choosing saves nothing, the Save button does; then prove it stuck.
    role = page.get_by_label(f"Role of viewer@{slug}.test")
    role.select_option("developer")
    with page.expect_response(lambda r: r.url.endswith("/role/")) as role_change:
        page.get_by_role("button", name=f"Save viewer@{slug}.test's role").click()
    assert role_change.value.status == 200
    expect(page.locator(f"tr[data-email='viewer@{slug}.test'] select")).to_have_value("developer")
    expect(page.get_by_role("button", name=f"Save viewer@{slug}.test's role")).to_be_focused()
    page.reload()
    expect(page.get_by_label(f"Role of viewer@{slug}.test")).to_have_value("developer")

    # Invite a new member; the one-time link is shown.
    page.get_by_label("Email", exact=True).fill(f"new@{slug}.test")
    page.locator("form.inline select[name=role]").select_option("operator")
    page.get_by_role("button", name="Add and invite").click()
    expect(page.get_by_test_id("invite-link")).to_contain_text(f"http://{slug}.localhost:{live_port}/invite/")
    expect(rows).to_have_count(3)
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        assert User.objects.get(email=f"viewer@{slug}.test").role == "developer"
        assert User.objects.get(email=f"new@{slug}.test").role == "operator"

    # The same browser is a stranger on another tenant's host.
    page.goto(f"http://globex.localhost:{live_port}/members/")
    expect(page).to_have_url(re.compile(r"globex\.localhost:\d+/login/"))


def test_a_refused_role_change_is_shown_and_announced(page: Page, live_port, fresh_tenant, django_db_blocker):
    """htmx 2 swaps no 4xx answer by default: base.html's htmx-config puts its message in the alert."""
    slug = fresh_tenant.slug
    _sign_in(page, f"http://{slug}.localhost:{live_port}/members/", f"owner@{slug}.test")
    expect(page.get_by_role("alert")).to_be_empty()
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        User.objects.filter(email=f"viewer@{slug}.test").delete()  # another admin removed them meanwhile
    page.get_by_label(f"Role of viewer@{slug}.test").select_option("developer")
    with page.expect_response(lambda r: r.url.endswith("/role/")) as role_change:
        page.get_by_role("button", name=f"Save viewer@{slug}.test's role").click()
    assert role_change.value.status == 404
    expect(page.get_by_role("alert")).to_have_text("There is nothing at this address.")
    expect(page).to_have_title(re.compile(r"^Members"))  # the error page's title is not taken over


def test_a_viewer_sees_members_but_no_controls(page: Page, live_port, fresh_tenant):
    slug = fresh_tenant.slug
    _sign_in(page, f"http://{slug}.localhost:{live_port}/members/", f"viewer@{slug}.test")
    expect(page.locator("#members tr")).to_have_count(2)
    expect(page.get_by_role("button", name="Add and invite")).to_have_count(0)
    expect(page.locator("#members select")).to_have_count(0)


def test_operator_creates_and_suspends_a_tenant(page: Page, live_port):
    base = f"http://localhost:{live_port}"
    _sign_in(page, f"{base}/", "operator@platform.test")
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    slug = f"op{uuid.uuid4().hex[:8]}"
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill("Operator Made")
    page.get_by_label("Owner email").fill(f"boss@{slug}.test")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_test_id("invite-link")).to_contain_text(f"http://{slug}.localhost:{live_port}/invite/")
    row = page.locator(f"tr[data-slug='{slug}']")
    expect(row).to_contain_text("Active")

    row.get_by_role("button", name="Suspend").click()
    expect(page.locator(f"tr[data-slug='{slug}']")).to_contain_text("Suspended")
    page.goto(f"http://{slug}.localhost:{live_port}/login/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("is suspended")


def test_owner_issues_an_api_token_that_works_then_revokes_it(page: Page, live_port, fresh_tenant):
    import urllib.error
    import urllib.request

    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/", f"owner@{slug}.test")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("browser-bot")
    page.get_by_label("Read", exact=True).check()
    page.get_by_role("button", name="Issue token").click()
    plaintext = page.get_by_test_id("new-token").locator("code").first.inner_text()
    assert plaintext.startswith("af_")

    def call() -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{live_port}/api/v1/members",
            headers={"Host": f"{slug}.localhost", "Authorization": f"Bearer {plaintext}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    assert call() == 200
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))  # confirmed first
    page.locator(f"tr[data-prefix='{plaintext.split('_')[1]}']").get_by_role("button", name="Revoke").click()
    expect(page.locator(f"tr[data-prefix='{plaintext.split('_')[1]}']")).to_contain_text("Revoked")
    assert len(asked) == 1 and plaintext.split("_")[1] in asked[0]
    assert call() == 401
