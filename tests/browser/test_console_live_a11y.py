"""The console's live (htmx) behaviour, in Chromium (WCAG 2.1 AA): an action's result is announced
without dropping keyboard focus (2.4.3, 4.1.3), and a live region changes only when there is
something to say, not with every poll (2.2.2, 4.1.3)."""

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from tests.browser.test_console import _sign_in

pytestmark = pytest.mark.browser


def test_members_page_removing_a_member_keeps_focus_and_announces_it(page: Page, live_port, fresh_tenant):
    """Members page, Remove (htmx): focus goes to the message that takes the removed row's place,
    which says who was removed."""
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/members/", f"owner@{slug}.test")
    row = page.locator(f"tr[data-email='viewer@{slug}.test']")
    expect(row).to_be_visible()
    page.on("dialog", lambda dialog: dialog.accept())
    remove = row.get_by_role("button", name="Remove")
    remove.focus()
    with page.expect_response(lambda r: r.url.endswith("/remove/")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    expect(row).to_have_count(0)
    focused = page.evaluate("document.activeElement && document.activeElement.tagName")
    announced = page.locator("[role=status], [role=alert], [aria-live]").all_inner_texts()
    assert focused == "P" and any(f"viewer@{slug}.test removed." in text for text in announced), (focused, announced)


def test_data_export_page_live_region_is_not_rewritten_every_second(
    page: Page, live_port, fresh_tenant, django_db_blocker
):
    """Data export page, an export queued: the poll finds nothing changed (204), and neither the
    live region nor the table is rewritten."""
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        from apps.lifecycle.models import Export

        Export.objects.create(status="queued", created_by=f"owner@{fresh_tenant.slug}.test")
    base = f"http://{fresh_tenant.slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/settings/data-export/", f"owner@{fresh_tenant.slug}.test")
    expect(page.get_by_test_id("export-rows")).to_contain_text("waiting for a worker")
    page.evaluate(
        """() => { window.__changes = 0;
          const regions = [document.querySelector('#export-announce').parentElement,
                           document.querySelector('#export-rows').parentElement];
          for (const region of regions)
            new MutationObserver(records => { window.__changes += records.length; })
              .observe(region, {childList: true, subtree: true, characterData: true}); }"""
    )
    page.wait_for_timeout(3500)
    assert page.evaluate("window.__changes") == 0
