import re

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from apps.catalog.models import Version
from apps.catalog.services import version_publish
from tests.browser.test_console import _sign_in
from tests.catalog.conftest import example
from tests.conftest import tenant_user

pytestmark = pytest.mark.browser

FINANCE = example("domains/finance.yaml")
RATED = FINANCE.replace("        onboarded_on: {type: date}\n", "        rating: {type: integer}\n")


def test_write_a_domain_with_an_error_fix_it_publish_and_diff(page: Page, live_port, fresh_tenant, django_db_blocker):
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        version_publish(actor=tenant_user(fresh_tenant, f"owner@{slug}.test"), source=FINANCE, message="First cut")

    _sign_in(page, f"{base}/", f"owner@{slug}.test")
    page.get_by_role("link", name="Domains").click()
    expect(page.locator("tr[data-name='finance']")).to_contain_text("v1")
    page.get_by_role("link", name="New domain").click()

    # A rule with an unknown action: the problem appears right under its line.
    broken = RATED.replace("then: deny", "then: explode")
    line = broken.splitlines().index("      then: explode") + 1
    page.get_by_label("YAML").fill(broken)
    page.get_by_role("button", name="Validate").click()
    problem = page.locator(f"#L{line} + tr.problem")
    expect(problem).to_be_visible()
    expect(problem).to_have_attribute("data-line", str(line))
    expect(problem).to_contain_text("explode")
    expect(page.get_by_test_id("validation")).to_have_attribute("data-valid", "false")

    page.get_by_label("YAML").fill(RATED)
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("validation")).to_have_attribute("data-valid", "true")
    expect(page.locator("tr.problem")).to_have_count(0)

    page.get_by_label("Message").fill("Rate vendors")
    page.get_by_role("button", name="Publish").click()
    expect(page).to_have_url(f"{base}/domains/finance/?version=2")
    expect(page.locator(".messages")).to_contain_text("Published finance v2.")
    expect(page.locator("tr[data-version='2']")).to_contain_text("Rate vendors")
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        assert Version.objects.get(number=2).source == RATED

    # Compare v1 with v2 (the form's defaults).
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/domains/finance/diff/\?from=1&to=2$"))
    expect(page.locator("tr.change[data-name='vendor.rating']")).to_contain_text("added")
    expect(page.locator("tr.change[data-name='vendor.onboarded_on']")).to_contain_text("removed")
    expect(page.locator("pre.diff .add", has_text="rating: {type: integer}")).to_be_visible()
