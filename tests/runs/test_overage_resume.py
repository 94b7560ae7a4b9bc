"""An overage approval covers the budgets its request listed, those the approver was shown. A run
resumed after it runs its model step again from the start, and the budgets are checked afresh:
one reached or changed while it waited is put to the approvers again, in the step's approval
(apps/runs/engine.py `_asked_anew`). The decision was applied to whatever budgets the fresh check
found, so the run spent past a budget nobody approved. Found by a review."""

from django_tenants.utils import schema_context

from apps.runs.models import Approval, Step
from apps.runs.services import run_decide
from tests.conftest import audit_events, tenant_user
from tests.runs.conftest import advance, triage  # noqa: F401 - fixture
from tests.runs.test_engine import start
from tests.runs.test_quotas import budget, spend


def _approve(acme, run, comment: str):
    with schema_context("acme"):
        run = run_decide(actor=tenant_user(acme, "admin@acme.test"), run=run, approved=True, comment=comment)
    return advance(run, "acme")


def _approval_and_model_steps(run) -> tuple[Approval, int]:
    with schema_context("acme"):
        return Approval.objects.get(run=run), Step.objects.filter(run=run, node="model").count()


def test_a_budget_reached_while_the_run_waited_is_asked_again(acme, triage):  # noqa: F811
    budget(acme, monthly_tokens=100, on_exhausted="approve")
    spend(acme, 100)  # project accounts-payable
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval"
    approval, _ = _approval_and_model_steps(run)
    assert len(approval.reasons) == 1 and "the workspace" in approval.reasons[0]
    budget(acme, "accounts-payable", monthly_tokens=50, on_exhausted="approve")  # meanwhile, already spent

    run = _approve(acme, run, "The workspace's budget.")

    approval, steps = _approval_and_model_steps(run)
    assert (run.status, steps) == ("waiting_approval", 0), (run.status, run.message)
    assert approval.decision == Approval.Decision.PENDING and approval.approver == ""
    assert any("project 'accounts-payable'" in reason for reason in approval.reasons), approval.reasons
    assert len(audit_events("acme", action="run.approve")) == 1  # the first answer stays on the record

    run = _approve(acme, run, "The project's too.")

    _, steps = _approval_and_model_steps(run)
    assert run.status == "succeeded" and steps >= 1, (run.status, run.message)


def test_a_budget_lowered_while_the_run_waited_is_asked_again(acme, triage):  # noqa: F811
    budget(acme, monthly_tokens=1000, on_exhausted="approve")
    spend(acme, 1000)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval"
    budget(acme, monthly_tokens=100, on_exhausted="approve")

    run = _approve(acme, run, "ok")

    approval, steps = _approval_and_model_steps(run)
    assert (run.status, steps, approval.decision) == ("waiting_approval", 0, Approval.Decision.PENDING)
    assert any("100 tokens" in reason for reason in approval.reasons), approval.reasons


def test_an_approval_of_unchanged_budgets_lets_the_run_go_on_at_once(acme, triage):  # noqa: F811
    budget(acme, monthly_tokens=100, on_exhausted="approve")
    spend(acme, 100)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval"
    run = _approve(acme, run, "ok")
    assert run.status == "succeeded", (run.status, run.message)
