"""Console pages for runs: list, start, the run page (timeline, live refresh, approval, cancel);
roles, bad input and isolation."""

import re

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.catalog.services import version_publish
from apps.runs.models import Approval, Run
from tests.conftest import audit_events, client_for, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, agent_yaml, deploy
from tests.runs.test_api import LARGE, SMALL, make_run, waiting_run


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def run_status(tenant, run: Run) -> str:
    with schema_context(tenant.schema_name):
        return Run.objects.get(pk=run.pk).status


def approval_of(tenant, run: Run) -> Approval:
    with schema_context(tenant.schema_name):
        return Approval.objects.get(run=run)


# --- list -------------------------------------------------------------------------------------


def test_it_lists_runs_for_a_viewer_with_no_start_button(acme, triage):
    run = make_run(acme, triage, input="Please triage the March invoices.")
    html = page(client_for(acme, "viewer@acme.test"), "/runs/")
    assert re.search(r'<a href="/runs/"[^>]*aria-current="page">Runs</a>', html)
    assert f'data-run="{run.pk}"' in html and "Please triage the March invoices." in html
    assert "Start a run" not in html


def test_it_filters_runs_by_status_and_agent(acme, triage):
    clerk = deploy(acme, agent_yaml("clerk"))
    done = make_run(acme, triage, status=Run.Status.SUCCEEDED)
    queued = make_run(acme, triage)
    other = make_run(acme, clerk)
    client = client_for(acme, "operator@acme.test")

    def listed(query: str) -> set[str]:
        return set(re.findall(r'data-run="([0-9a-f-]+)"', page(client, f"/runs/?{query}")))

    assert listed("") == {str(done.pk), str(queued.pk), str(other.pk)}
    assert listed("status=succeeded") == {str(done.pk)}
    assert listed("agent=clerk") == {str(other.pk)}
    assert listed("status=queued&agent=invoice-triage") == {str(queued.pk)}
    assert listed("page=999") == {str(done.pk), str(queued.pk), str(other.pk)}  # past the end: the last page


@pytest.mark.parametrize("query", ["status=sleeping", "agent=nobody"])
def test_a_bad_filter_is_400_and_lists_nothing(acme, triage, query):
    make_run(acme, triage)
    html = page(client_for(acme, "owner@acme.test"), f"/runs/?{query}", status=400)
    assert "data-run=" not in html
    assert 'class="errors"' in html


# --- start ------------------------------------------------------------------------------------


def test_an_operator_starts_a_run_of_a_deployed_agent(acme, triage):
    with schema_context("acme"):
        version_publish(actor=tenant_user(acme, "owner@acme.test"), source=agent_yaml("clerk"), message="not deployed")
    client = client_for(acme, "operator@acme.test")
    html = page(client, "/runs/new/?agent=invoice-triage")
    assert '<option value="invoice-triage" selected>' in html
    assert 'value="clerk"' not in html  # published, never deployed: it cannot run

    response = client.post("/runs/new/", {"agent": "invoice-triage", "input": SMALL})
    with schema_context("acme"):
        run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert (run.status, run.input, run.created_by) == ("queued", SMALL, "operator@acme.test")


def test_textarea_line_breaks_reach_the_run_as_typed(acme, triage):
    client_for(acme, "developer@acme.test").post("/runs/new/", {"agent": "invoice-triage", "input": "one\r\ntwo"})
    with schema_context("acme"):
        assert Run.objects.get().input == "one\ntwo"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"agent": "invoice-triage", "input": ""}, "This field is required."),
        ({"agent": "invoice-triage", "input": "  \n "}, "A run needs an input"),
        ({"agent": "nobody", "input": SMALL}, "Select a valid choice."),
        ({"agent": "finance", "input": SMALL}, "Select a valid choice."),
        ({"agent": "invoice-triage", "input": "x" * 100_001}, "at most 100000 characters"),
    ],
)
def test_a_bad_start_form_is_400_and_starts_nothing(acme, triage, data, message):
    response = client_for(acme, "owner@acme.test").post("/runs/new/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    with schema_context("acme"):
        assert not Run.objects.exists()


def test_with_no_agent_deployed_the_start_page_says_so(acme):
    html = page(client_for(acme, "owner@acme.test"), "/runs/new/")
    assert "No agent is deployed yet." in html


def test_a_viewer_cannot_start_a_run(acme, triage):
    client = client_for(acme, "viewer@acme.test")
    assert client.get("/runs/new/").status_code == 403
    assert client.post("/runs/new/", {"agent": "invoice-triage", "input": SMALL}).status_code == 403
    with schema_context("acme"):
        assert not Run.objects.exists()


def test_the_agent_page_offers_a_run_form_to_who_may_start(acme, triage):
    operator = page(client_for(acme, "operator@acme.test"), "/agents/invoice-triage/")
    assert 'data-testid="agent-run-form"' in operator and 'action="/runs/new/"' in operator
    assert 'href="/runs/?agent=invoice-triage"' in operator
    viewer = page(client_for(acme, "viewer@acme.test"), "/agents/invoice-triage/")
    assert 'data-testid="agent-run-form"' not in viewer
    assert 'href="/runs/?agent=invoice-triage"' in viewer
    domain = page(client_for(acme, "owner@acme.test"), "/domains/finance/")
    assert 'data-testid="agent-runs"' not in domain


def test_an_agent_that_is_not_deployed_offers_no_run_form(acme, triage):
    with schema_context("acme"):
        version_publish(actor=tenant_user(acme, "owner@acme.test"), source=agent_yaml("clerk"), message="draft")
    html = page(client_for(acme, "owner@acme.test"), "/agents/clerk/")
    assert 'data-testid="agent-run-form"' not in html


def test_the_agent_page_form_starts_a_run(acme, triage):
    response = client_for(acme, "operator@acme.test").post("/runs/new/", {"agent": "invoice-triage", "input": LARGE})
    assert response.status_code == 302
    with schema_context("acme"):
        assert Run.objects.get().input == LARGE


# --- the run page -----------------------------------------------------------------------------


def test_the_run_page_shows_the_timeline_of_a_finished_run_and_does_not_poll(acme, triage):
    run = advance(make_run(acme, triage, input=SMALL), "acme")
    html = page(client_for(acme, "viewer@acme.test"), f"/runs/{run.pk}/")
    assert 'data-status="succeeded"' in html
    assert "INV-1001 (420.00 EUR, vendor low risk) can be approved." in html
    steps = re.findall(r'<li class="step[^"]*" data-index="(\d+)" data-node="(\w+)" data-status="(\w+)"', html)
    assert steps == [("1", "model", "ok"), ("2", "tool", "ok"), ("3", "model", "ok")]
    assert 'data-tool="find_invoices"' in html
    assert "&quot;question&quot;: &quot;Which rules apply to invoices?&quot;" in html  # the arguments
    assert "scripted, offline" in html
    assert "hx-trigger" not in html
    assert "Cancel run" not in html


def test_a_waiting_run_shows_the_approval_form_to_an_operator_only(acme, triage):
    run = waiting_run(acme, triage)
    operator = page(client_for(acme, "operator@acme.test"), f"/runs/{run.pk}/")
    assert 'data-testid="pending-approval"' in operator
    assert 'value="approve"' in operator and 'value="reject"' in operator
    assert "&quot;amount&quot;: 25000" in operator and "large-invoice" in operator
    assert "never shown" not in operator  # a step's replay stays on the server
    assert 'hx-trigger="every 1s"' in operator
    for email in ("developer@acme.test", "viewer@acme.test"):
        html = page(client_for(acme, email), f"/runs/{run.pk}/")
        assert 'data-testid="pending-approval"' in html
        assert 'value="approve"' not in html
    assert "Cancel run" in page(client_for(acme, "developer@acme.test"), f"/runs/{run.pk}/")
    assert "Cancel run" not in page(client_for(acme, "viewer@acme.test"), f"/runs/{run.pk}/")


def test_the_live_fragment_answers_204_until_something_changes(acme, triage):
    run = make_run(acme, triage, input=SMALL)
    client = client_for(acme, "viewer@acme.test")
    html = page(client, f"/runs/{run.pk}/")
    version = re.search(r'data-version="(\w+)"', html).group(1)
    assert f'hx-get="/runs/{run.pk}/live/?v={version}"' in html

    unchanged = client.get(f"/runs/{run.pk}/live/", {"v": version}, HTTP_HX_REQUEST="true")
    assert unchanged.status_code == 204 and unchanged.content == b""

    advance(run, "acme")
    changed = client.get(f"/runs/{run.pk}/live/", {"v": version}, HTTP_HX_REQUEST="true")
    fragment = changed.content.decode()
    assert changed.status_code == 200
    assert 'id="run-live"' in fragment
    assert 'data-status="succeeded"' in fragment and "<html" not in fragment
    assert "hx-get" not in fragment  # finished: the page stops polling


def test_an_operator_approves_with_a_comment(acme, triage):
    run = advance(make_run(acme, triage, input=LARGE), "acme")
    assert run.status == "waiting_approval"
    client = client_for(acme, "operator@acme.test")
    response = client.post(
        f"/runs/{run.pk}/decide/",
        {"decision": "approve", "comment": "Vendor confirmed.", "step": approval_of(acme, run).step},
    )
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    approval = approval_of(acme, run)
    assert (approval.decision, approval.approver, approval.comment) == (
        "approved",
        "operator@acme.test",
        "Vendor confirmed.",
    )
    assert run_status(acme, run) == "queued"
    assert advance(run, "acme").status == "succeeded"
    html = page(client, f"/runs/{run.pk}/")
    assert 'data-decision="approved"' in html and "Vendor confirmed." in html


def test_an_admin_rejects(acme, triage):
    run = waiting_run(acme, triage)
    response = client_for(acme, "admin@acme.test").post(
        f"/runs/{run.pk}/decide/", {"decision": "reject", "step": approval_of(acme, run).step}
    )
    assert response.status_code == 302
    assert approval_of(acme, run).decision == "rejected"


@pytest.mark.parametrize("email", ["developer@acme.test", "viewer@acme.test"])
def test_who_may_not_approve_is_refused_and_nothing_changes(acme, triage, email):
    run = waiting_run(acme, triage)
    response = client_for(acme, email).post(
        f"/runs/{run.pk}/decide/", {"decision": "approve", "step": approval_of(acme, run).step}
    )
    assert response.status_code == 403
    assert approval_of(acme, run).decision == "pending" and run_status(acme, run) == "waiting_approval"


@pytest.mark.parametrize(
    "data",
    [
        {"decision": "maybe", "step": 2},
        {},
        {"decision": "approve", "comment": "x" * 2001, "step": 2},
        {"decision": "approve"},
    ],
    ids=["maybe", "none", "long", "no-step"],
)
def test_a_bad_decision_is_400_and_changes_nothing(acme, triage, data):
    run = waiting_run(acme, triage)
    response = client_for(acme, "owner@acme.test").post(f"/runs/{run.pk}/decide/", data)
    assert response.status_code == 400
    assert approval_of(acme, run).decision == "pending"


def test_deciding_a_run_that_does_not_wait_shows_why(acme, triage):
    run = make_run(acme, triage, status=Run.Status.RUNNING)
    response = client_for(acme, "owner@acme.test").post(f"/runs/{run.pk}/decide/", {"decision": "approve", "step": 2})
    assert response.status_code == 409
    assert "<code>run_not_waiting</code>" in response.content.decode()
    assert run_status(acme, run) == "running"


def test_a_developer_cancels_a_run(acme, triage):
    run = waiting_run(acme, triage)
    response = client_for(acme, "developer@acme.test").post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 302
    assert run_status(acme, run) == "cancelled" and approval_of(acme, run).decision == "cancelled"
    with schema_context("acme"):
        developer = User.objects.get(email="developer@acme.test")
    assert audit_events("acme", action="run.cancel", actor_id=f"user:{developer.pk}")


def test_cancelling_a_running_run_says_it_will_stop(acme, triage):
    run = make_run(acme, triage, status=Run.Status.RUNNING)
    client = client_for(acme, "owner@acme.test")
    response = client.post(f"/runs/{run.pk}/cancel/", follow=True)
    assert "Cancellation requested" in response.content.decode()
    assert 'data-testid="cancelling"' in response.content.decode()
    assert run_status(acme, run) == "running"


def test_a_viewer_cannot_cancel(acme, triage):
    run = make_run(acme, triage)
    assert client_for(acme, "viewer@acme.test").post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert run_status(acme, run) == "queued"


def test_cancelling_a_finished_run_shows_why(acme, triage):
    run = make_run(acme, triage, status=Run.Status.FAILED, reason="max_steps", message="Too many steps.")
    response = client_for(acme, "owner@acme.test").post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 409
    assert "<code>run_finished</code>" in response.content.decode()
    assert run_status(acme, run) == "failed"


def test_a_sub_agent_run_links_to_its_parent_and_back(acme, triage):
    parent = make_run(acme, triage, status=Run.Status.RUNNING)
    child = make_run(acme, triage, parent=parent, parent_step=2)
    client = client_for(acme, "viewer@acme.test")
    assert f'href="/runs/{child.pk}/"' in page(client, f"/runs/{parent.pk}/")
    assert f'href="/runs/{parent.pk}/"' in page(client, f"/runs/{child.pk}/")


# --- ids and isolation ------------------------------------------------------------------------

RUN_PAGES = [
    ("get", "/runs/{}/"),
    ("get", "/runs/{}/live/"),
    ("post", "/runs/{}/cancel/"),
    ("post", "/runs/{}/decide/"),
]


@pytest.mark.parametrize(("method", "path"), RUN_PAGES)
@pytest.mark.parametrize("run_id", ["nope", "12", "5f0c6d1e-8f3b-4c3a-9d7e-2b1a0c9e8f7d"])
def test_a_malformed_or_unknown_run_id_is_404(acme, method, path, run_id):
    client = client_for(acme, "owner@acme.test")
    response = getattr(client, method)(path.format(run_id), {"decision": "approve"} if method == "post" else None)
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), RUN_PAGES)
def test_another_tenants_run_is_404_and_untouched(acme, globex, method, path):
    agent = deploy(globex, FINANCE, TRIAGE)
    run = waiting_run(globex, agent)
    client = client_for(acme, "owner@acme.test")
    response = getattr(client, method)(path.format(run.pk), {"decision": "approve"} if method == "post" else None)
    assert response.status_code == 404
    assert run_status(globex, run) == "waiting_approval" and approval_of(globex, run).decision == "pending"
    assert str(run.pk) not in page(client, "/runs/")


def test_a_decision_about_another_step_than_the_one_waiting_is_refused(acme, triage):
    run = waiting_run(acme, triage)
    step = approval_of(acme, run).step
    response = client_for(acme, "operator@acme.test").post(
        f"/runs/{run.pk}/decide/", {"decision": "approve", "step": step + 2}
    )
    assert response.status_code == 409 and b"approval_stale" in response.content
    assert approval_of(acme, run).decision == "pending"


def test_a_decision_from_a_page_shown_before_the_question_was_asked_again_is_refused(acme, triage):
    """The form carries when its question was asked: one asked again since at the same step (an
    overage whose budgets changed) is another question, which this page did not show."""
    run = waiting_run(acme, triage)
    client = client_for(acme, "operator@acme.test")
    shown = re.search(r'name="requested_at" value="([^"]+)"', page(client, f"/runs/{run.pk}/")).group(1)
    with schema_context(acme.schema_name):
        asked = Approval.objects.get(run=run)
        asked.requested_at, asked.reasons = timezone.now(), ["The project's budget changed: 90% used."]
        asked.save(update_fields=["requested_at", "reasons"])
    step = approval_of(acme, run).step
    response = client.post(f"/runs/{run.pk}/decide/", {"decision": "approve", "step": step, "requested_at": shown})
    assert response.status_code == 409 and b"approval_stale" in response.content
    assert approval_of(acme, run).decision == "pending"
    current = re.search(r'name="requested_at" value="([^"]+)"', page(client, f"/runs/{run.pk}/")).group(1)
    response = client.post(f"/runs/{run.pk}/decide/", {"decision": "approve", "step": step, "requested_at": current})
    assert response.status_code == 302 and approval_of(acme, run).decision == "approved"


def _page_version(client, run) -> str:
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    return re.search(r'data-version="(\w+)"', response.content.decode()).group(1)


def test_the_live_fragment_shows_a_sub_agent_run_that_changed_since_the_page_was_drawn(acme, triage):
    """A child run that ends while its parent's own row does not change (the parent waits for an
    approval of its own): the poll shows it, not 204 "nothing changed"."""
    now = timezone.now()
    parent = make_run(acme, triage, status=Run.Status.WAITING_APPROVAL, started_at=now, step_count=2)
    child = make_run(
        acme, triage, parent=parent, parent_step=2, status=Run.Status.WAITING_APPROVAL, started_at=now, step_count=1
    )
    client = client_for(acme, "viewer@acme.test")
    version = _page_version(client, parent)

    with schema_context("acme"):  # the child's approval is decided and a worker finishes it
        Run.objects.filter(pk=child.pk).update(
            status=Run.Status.SUCCEEDED,
            step_count=3,
            output="done",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )

    response = client.get(f"/runs/{parent.pk}/live/", {"v": version}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Succeeded" in response.content.decode()


def test_the_live_fragment_shows_a_sub_agent_run_started_during_the_parents_step(acme, triage):
    """A sub-agent run starts while its parent's step is under way (the parent's row unchanged
    until the step ends): the poll shows it as it runs."""
    parent = make_run(acme, triage, status=Run.Status.RUNNING, started_at=timezone.now(), step_count=1)
    client = client_for(acme, "viewer@acme.test")
    version = _page_version(client, parent)

    child = make_run(acme, triage, parent=parent, parent_step=2, status=Run.Status.RUNNING, started_at=timezone.now())

    response = client.get(f"/runs/{parent.pk}/live/", {"v": version}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'href="/runs/{child.pk}/"' in response.content.decode()


RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: what follows it is drawn reversed
RLM = "\u200f"  # RIGHT-TO-LEFT MARK: digits around a space between two of them are drawn swapped


def _pending_card(html: str) -> str:
    start = html.index('data-testid="pending-approval"')
    return html[start : html.index("</section>", start)]


@pytest.mark.parametrize("mark", [RLO, RLM], ids=["override", "right_to_left_mark"])
def test_the_approval_card_shows_a_models_text_direction_override_escaped(acme, mark):
    """The model is untrusted (docs/runs.md): a U+202E it put in a tool call's arguments is shown
    on the approval card as `\\u202e`, so the approver reads the call that will be made, not the
    same characters drawn in another order (foundry/text.py `json_shown`); so is a right-to-left
    mark (U+200F), around `0009 3214` drawn as `3214 0009` (tests/runs/test_direction_marks.py)."""
    triage = deploy(acme, FINANCE, TRIAGE)
    run = waiting_run(acme, triage)
    with schema_context("acme"):
        Approval.objects.filter(run=run).update(
            arguments={"amount": 25000, "payee": f"ACME Ltd {mark}0009 3214{mark} 0000 89ED"}
        )
    response = client_for(acme, "operator@acme.test").get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    card = _pending_card(response.content.decode())
    assert 'value="approve"' in card
    escaped = f"\\u{ord(mark):04x}"
    assert mark not in card and f"ACME Ltd {escaped}0009 3214{escaped}" in card


def test_an_approval_comment_with_a_text_direction_override_is_refused(acme):
    """An approver's comment reads as written wherever it is shown (the run's page, the audit
    trail): one with a U+202E is refused (comment_invalid), the approval still pending."""
    triage = deploy(acme, FINANCE, TRIAGE)
    run = waiting_run(acme, triage)
    response = client_for(acme, "operator@acme.test").post(
        f"/runs/{run.pk}/decide/",
        {"decision": "approve", "step": 2, "comment": f"Checked with finance {RLO}devorppa ton"},
    )
    assert response.status_code == 400
    with schema_context("acme"):
        assert Approval.objects.get(run=run).decision == "pending"
        assert Run.objects.get(pk=run.pk).status == "waiting_approval"


def test_the_run_page_offers_an_overage_approval_only_to_who_may_approve_it(acme):
    """Approving an overage takes what setting a budget takes; an operator may only reject it. The
    page offered an operator Approve, answered 403 when pressed. Found by a review."""
    from apps.runs.models import Approval
    from tests.runs.conftest import FINANCE, TRIAGE, deploy
    from tests.runs.test_api import waiting_run

    run = waiting_run(acme, deploy(acme, FINANCE, TRIAGE))
    with schema_context(acme.schema_name):
        Approval.objects.filter(run=run).update(tool="(overage)")
    approve, reject = 'name="decision" value="approve"', 'name="decision" value="reject"'
    operator = client_for(acme, "operator@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert reject in operator and approve not in operator
    admin = client_for(acme, "admin@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert reject in admin and approve in admin
