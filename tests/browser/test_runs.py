"""A run started from the console, executed by a real Celery worker, approved in the browser; the
run page follows it live and stops polling once it has finished."""

import re
import time

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from apps.runs.models import Approval, Run
from tests.browser.test_console import _sign_in
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.browser

LARGE = "Look up the 25,000 EUR invoice."  # the manifest's test whose call needs an approval
WORKER_TIMEOUT = 30_000  # ms: the worker picks the run up, the page's next poll shows it


def test_run_an_agent_from_its_page_approve_the_call_and_watch_it_finish(
    page: Page, live_port, fresh_tenant, celery_worker_process, django_db_blocker
):
    slug = fresh_tenant.slug
    base = f"http://{slug}.localhost:{live_port}"
    with django_db_blocker.unblock():
        deploy(fresh_tenant, FINANCE, TRIAGE)

    _sign_in(page, f"{base}/", f"owner@{slug}.test")
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="invoice-triage").click()
    page.get_by_label("Run v1 with the input").fill(LARGE)
    page.get_by_role("button", name="Run", exact=True).click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/runs/[0-9a-f-]{{36}}/$"))
    run_id = page.url.rstrip("/").rsplit("/", 1)[1]
    expect(page.locator(".messages")).to_contain_text("Run of invoice-triage started.")
    expect(page.get_by_test_id("run-input")).to_have_text(LARGE)

    # The worker takes the run as far as the call that needs an approval; the page follows.
    live = page.get_by_test_id("run-live")
    expect(live).to_have_attribute("data-status", "waiting_approval", timeout=WORKER_TIMEOUT)
    approval = page.get_by_test_id("pending-approval")
    expect(approval).to_contain_text("find_invoices")
    expect(approval).to_contain_text('"amount": 25000')
    expect(page.locator("li.step[data-index='1']")).to_have_attribute("data-node", "model")

    # Polling goes on while the run waits, without sweeping away a comment being typed.
    page.get_by_label("Comment").fill("Checked with the vendor.")
    with page.expect_response(lambda r: "/live/" in r.url) as poll:
        pass
    assert poll.value.status == 204
    expect(page.get_by_label("Comment")).to_have_value("Checked with the vendor.")
    page.get_by_role("button", name="Approve").click()

    expect(page.locator(".messages")).to_contain_text("Approved: the run continues.")
    expect(live).to_have_attribute("data-status", "succeeded", timeout=WORKER_TIMEOUT)
    expect(page.get_by_test_id("run-output")).to_have_text("The invoice was not looked up.")
    steps = page.locator("li.step")
    expect(steps).to_have_count(3)
    expect(steps.nth(1)).to_have_attribute("data-tool", "find_invoices")
    expect(steps.nth(1)).to_have_attribute("data-status", "ok")
    expect(steps.nth(1)).to_contain_text('"amount": 25000')
    expect(page.get_by_test_id("approvals")).to_contain_text("Checked with the vendor.")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)

    # Finished: the page stops polling.
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/live/" in r.url else None)
    time.sleep(2.5)
    assert polls == []

    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        run = Run.objects.get(pk=run_id)
        assert (run.status, run.step_count) == ("succeeded", 3)
        decided = Approval.objects.get(run=run)
        assert (decided.decision, decided.approver, decided.comment) == (
            "approved",
            f"owner@{slug}.test",
            "Checked with the vendor.",
        )

    # The list finds it by status.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    page.get_by_label("Status").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f"tr[data-run='{run_id}']")).to_contain_text("invoice-triage")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-run]")).to_have_count(0)
