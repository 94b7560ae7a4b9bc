"""The Content-Security-Policy (foundry/csp.py) in Chromium: every console page a workspace owner
reaches from the navigation, and the API docs, load without one refused script, style or image,
and still work (htmx swaps a member's role in place; Swagger UI draws the API's operations)."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_console import _sign_in

pytestmark = pytest.mark.browser

WATCH = """
window.__refused = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__refused.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _refused(page: Page, messages: list[str]) -> list[str]:
    return page.evaluate("window.__refused") + [m for m in messages if "Content Security Policy" in m]


def test_every_console_page_and_the_api_docs_load_under_the_policy(page: Page, live_port, fresh_tenant):
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.add_init_script(WATCH)
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/", f"owner@{slug}.test")
    expect(page.get_by_test_id("current-user")).to_be_visible()

    links = page.locator("nav.nav a").evaluate_all("links => links.map(a => a.href)")
    assert len(links) >= 6, links
    for link in links:
        response = page.goto(link)
        assert response is not None and response.status == 200, link
        page.wait_for_load_state("networkidle")
        assert _refused(page, messages) == [], link

    page.goto(f"{base}/members/")
    page.get_by_label(f"Role of viewer@{slug}.test").select_option("operator")
    with page.expect_response(lambda r: r.url.endswith("/role/")) as role_change:
        page.get_by_role("button", name=f"Save viewer@{slug}.test's role").click()
    assert role_change.value.status == 200
    expect(page.get_by_label(f"Role of viewer@{slug}.test")).to_have_value("operator")
    assert _refused(page, messages) == []

    page.goto(f"{base}/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.get_by_text("/api/v1/workspace", exact=True).first).to_be_visible()
    assert _refused(page, messages) == []
