"""Accessibility: every console page a workspace owner or a platform operator can reach by
following links, signed in or not, meets WCAG 2.1 levels A and AA as far as axe-core checks
them (axe-playwright-python runs axe-core in Chromium). Swagger UI (/api/docs/, a third party's
page) is not ours to fix and is left out."""

from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from apps.runs.services import run_create
from tests.browser.test_console import _sign_in
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.browser

RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
SKIP = ("/logout", "/api/", "/static/", "/media/")
MAX_PAGES = 80
axe = Axe()


def _violations(page: Page) -> list[str]:
    results = axe.run(page, options={**RULES, "resultTypes": ["violations"]})
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} — {violation['help']}"
        for violation in results.response["violations"]
        for node in violation["nodes"]
    ]


def _shape(parts) -> tuple:
    """Pages alike for this purpose: the same path with another query, or the same kind of page
    of another object (`/tenants/<slug>/limits/` of each tenant) — one of each is checked."""
    segments = parts.path.strip("/").split("/")
    if parts.query:
        return (parts.path, "?")
    return (segments[0], len(segments), segments[-1]) if len(segments) > 2 else tuple(segments)


def _crawl(page: Page, start: str) -> str:
    """Every same-origin page reachable by links from `start` (GET), each checked by axe: what
    axe found, page by page (empty: nothing)."""
    origin = urlsplit(start).netloc
    queue, seen, shapes, report = [start], {start}, set(), {}
    while queue and len(seen) <= MAX_PAGES:
        url = queue.pop(0)
        response = page.goto(url)
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        page.wait_for_load_state("networkidle")
        found = _violations(page)
        if found:
            report[url] = found
        for link in page.locator("a[href]").evaluate_all("links => links.map(a => a.href)"):
            parts = urlsplit(link)
            target = parts._replace(fragment="").geturl()
            if parts.netloc != origin or parts.path.startswith(SKIP) or target in seen or _shape(parts) in shapes:
                continue
            seen.add(target)
            shapes.add(_shape(parts))
            queue.append(target)
    assert len(seen) > 5, seen  # the crawl did reach the console
    return "\n".join(f"{url}\n  " + "\n  ".join(found) for url, found in report.items())


def test_a_workspace_console_meets_wcag_aa(page: Page, live_port, fresh_tenant, django_db_blocker):
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    with django_db_blocker.unblock():
        deploy(fresh_tenant, FINANCE, TRIAGE)
        with schema_context(fresh_tenant.schema_name):
            from apps.catalog.models import Document

            agent = Document.objects.get(name="invoice-triage")
            run_create(agent=agent, input="Look up INV-1.", created_by=f"owner@{slug}.test")
    signed_out = {}
    for path in ("/login/", "/no-such-page/"):
        page.goto(f"{base}{path}")
        signed_out.update({path: found} if (found := _violations(page)) else {})
    assert signed_out == {}
    _sign_in(page, f"{base}/", f"owner@{slug}.test")
    expect(page.get_by_test_id("current-user")).to_be_visible()
    assert _crawl(page, f"{base}/") == ""


def test_the_operator_console_meets_wcag_aa(page: Page, live_port):
    base = f"http://localhost:{live_port}"
    _sign_in(page, f"{base}/", "operator@platform.test")
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    assert _crawl(page, f"{base}/") == ""
