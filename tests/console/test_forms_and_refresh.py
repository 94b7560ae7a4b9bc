"""The workspace console on odd input and after actions: forms answer 4xx with their errors, say
what changed, and the run page's live refresh shows what the run started."""

import re

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.billing.models import Budget
from apps.billing.rls import usage_scope
from apps.runs.models import Run
from tests.conftest import client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run


def _owner(acme):
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    return client


def test_a_budget_of_thousands_of_digits_is_a_form_error_not_a_500(acme):
    """A budget of thousands of digits is a form error (400), not a 500."""
    form = {"project": "", "monthly_tokens": "9" * 5000, "on_exhausted": "stop"}
    response = _owner(acme).post("/usage/budgets/", form)
    assert response.status_code == 400, response.status_code
    with usage_scope(acme.pk):
        assert not Budget.objects.filter(tenant_id=acme.pk).exists()


def test_a_sub_agent_started_while_the_run_page_is_open_shows_up_through_the_live_refresh(acme):
    """docs/runs.md: a run's page shows its sub-agent runs and polls until the run finishes: the
    sub-agents are part of the polled fragment."""
    triage = deploy(acme, FINANCE, TRIAGE)
    parent = make_run(acme, triage, status=Run.Status.RUNNING, started_at=timezone.now())
    client = client_for(acme, "viewer@acme.test")
    html = client.get(f"/runs/{parent.pk}/").content.decode()
    version = re.search(r'data-version="(\w+)"', html).group(1)

    # Between two polls the run starts a sub-agent in its step 1, which then finishes, and so does the run.
    child = make_run(acme, triage, parent=parent, parent_step=1, status=Run.Status.SUCCEEDED)
    with schema_context(acme.schema_name):
        Run.objects.filter(pk=parent.pk).update(
            status=Run.Status.SUCCEEDED, step_count=2, finished_at=timezone.now(), updated_at=timezone.now()
        )

    poll = client.get(f"/runs/{parent.pk}/live/", {"v": version}, HTTP_HX_REQUEST="true")
    fragment = poll.content.decode()
    assert poll.status_code == 200 and "hx-get" not in fragment  # the page's last poll: it stops here
    assert f'href="/runs/{child.pk}/"' in fragment, "the sub-agent run never shows on the open page"


def test_the_sso_settings_page_links_no_sign_in_page_that_does_not_exist(acme):
    """Before a provider is set up the page links no sign-in page (which would answer 404)."""
    client = _owner(acme)
    html = client.get("/settings/sso/").content.decode()
    for href in re.findall(r'href="(/sso/[^"]*)"', html):
        assert client.get(href).status_code != 404, f"{href} is linked but answers 404"


def test_submitting_an_empty_budget_form_does_not_claim_a_budget_was_removed(acme):
    """An empty budget form where there is no budget says nothing changed, not that one was removed."""
    client = _owner(acme)
    response = client.post(
        "/usage/budgets/",
        {"project": "", "monthly_tokens": "", "monthly_cost_usd": "", "on_exhausted": "stop"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert not any("removed" in m for m in shown), shown
