"""Console pages that poll (htmx `every 1s`) stop when a poll is refused (foundry/polls.py).

htmx stops an `every` poll only when its element leaves the page or the answer is 286; the
console's htmx config swaps a 4xx into #console-alert and leaves the polling element where it
is. So a refusal that was not a sign-in redirect (HX-Redirect) was asked again every second for
as long as the tab stayed open. A refused poll now reloads its page (HX-Refresh), which shows the
refusal as a page."""

import time

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from apps.accounts.models import User
from apps.accounts.permissions import Role
from tests.browser.test_console import _sign_in
from tests.conftest import PASSWORD, audit_events
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import waiting_run

pytestmark = pytest.mark.browser

WATCH_SECONDS = 5


def _polls(page: Page, fragment: str) -> list:
    seen = []
    page.on("response", lambda r: seen.append(r.status) if fragment in r.url else None)
    return seen


def test_a_demoted_admins_export_page_stops_polling_at_the_first_refusal(
    page: Page, live_port, fresh_tenant, django_db_blocker
):
    """Data export page open (an export queued) while its admin is demoted to developer: the
    poll is refused 403 (right), but the page kept polling every second, and every refused poll
    wrote an `access.denied` event to the workspace's audit trail (3,600 an hour per open tab,
    with nobody doing anything). Now one refused poll, and two events: its own and the reloaded
    page's (a poll's refusal is recorded like any other: a header must not hide one)."""
    slug = fresh_tenant.slug
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        from apps.lifecycle.models import Export

        User.objects.create_user(f"admin@{slug}.test", PASSWORD, role=Role.ADMIN)
        Export.objects.create(status="queued", created_by=f"owner@{slug}.test")
    base = f"http://{slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/settings/data-export/", f"admin@{slug}.test")
    expect(page.get_by_test_id("export-rows")).to_contain_text("waiting for a worker")
    polls = _polls(page, "/settings/data-export/rows/")
    with page.expect_response(lambda r: "/rows/" in r.url):
        pass  # the page polls

    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        from apps.accounts.services import member_role_change

        owner = User.objects.get(email=f"owner@{slug}.test")
        member_role_change(actor=owner, member=User.objects.get(email=f"admin@{slug}.test"), role=Role.DEVELOPER)
    time.sleep(WATCH_SECONDS)
    page.wait_for_timeout(100)

    refused = [s for s in polls if s == 403]
    with django_db_blocker.unblock():
        denied = audit_events(fresh_tenant.schema_name, action="access.denied")
    assert refused, polls  # the refusal itself is right
    assert len(refused) <= 1 and len(denied) <= 2, (
        f"{len(refused)} refused polls and {len(denied)} access.denied events in {WATCH_SECONDS}s"
    )


def test_a_run_page_stops_polling_once_the_workspace_is_suspended(
    page: Page, live_port, fresh_tenant, django_db_blocker
):
    """A live run's page (waiting for approval) open when the workspace is suspended: every poll
    is 403 tenant_suspended (right), but the page went on polling every second for as long as
    the tab stayed open (its session was even deleted by the suspension). Now the first refused
    poll reloads the page, which shows the refusal and polls no more."""
    slug = fresh_tenant.slug
    with django_db_blocker.unblock():
        agent = deploy(fresh_tenant, FINANCE, TRIAGE)
        run = waiting_run(fresh_tenant, agent)
    base = f"http://{slug}.localhost:{live_port}"
    _sign_in(page, f"{base}/runs/{run.pk}/", f"owner@{slug}.test")
    expect(page.get_by_test_id("run-live")).to_have_attribute("data-status", "waiting_approval")
    polls = _polls(page, f"/runs/{run.pk}/live/")
    with page.expect_response(lambda r: "/live/" in r.url):
        pass

    with django_db_blocker.unblock():
        from apps.tenants.services import tenant_suspend

        tenant_suspend(tenant=fresh_tenant)
    try:
        time.sleep(WATCH_SECONDS)
        page.wait_for_timeout(100)
        refused = [s for s in polls if s == 403]
        assert refused, polls
        assert len(refused) <= 1, f"{len(refused)} refused polls in {WATCH_SECONDS}s: {polls}"
    finally:
        with django_db_blocker.unblock():
            from apps.tenants.services import tenant_resume

            tenant_resume(tenant=fresh_tenant)
