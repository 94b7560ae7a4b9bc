"""Overage approvals answer the question they were asked: one approved in one month does not answer
the same budget reached in the next, and one refused ends the run whatever became of the budget."""

from datetime import date

from django_tenants.utils import schema_context

from apps.billing import quotas
from apps.runs.models import Approval, Step
from apps.runs.services import run_decide
from tests.conftest import tenant_user
from tests.runs.conftest import advance, triage  # noqa: F401 - fixture
from tests.runs.test_engine import start
from tests.runs.test_quotas import budget


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def test_an_overage_approved_in_one_month_is_asked_again_when_the_run_resumes_in_the_next(
    acme,
    triage,  # noqa: F811
    monkeypatch,
):
    """docs/billing.md ("Quotas and budgets"): an approved overage holds "for the rest of that
    month: ... the next month asks again — also one reached or changed while the run waited for
    the approval: the approval covers what it listed when it was given". docs/runs.md: "for the
    rest of that month ... the next month asks again".

    A zero workspace budget (`approve`) makes the run wait at step 1 this month; it is approved,
    and the worker resumes it in the next month, where the same budget is reached again. That is
    a new cap (its key names the month): the step's approval is put to the approvers again, though
    the reasons' text is the same ("This month's usage (0 tokens) ...")."""
    budget(acme, monthly_tokens=0, on_exhausted="approve")
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval", run.message
    with schema_context("acme"):
        run = run_decide(actor=tenant_user(acme, "admin@acme.test"), run=run, approved=True, comment="This month.")

    following = _next_month(quotas.month_of())
    monkeypatch.setattr(quotas, "month_of", lambda moment=None: following)
    run = advance(run, "acme")

    with schema_context("acme"):
        approval = Approval.objects.get(run=run, step=1)
        model_calls = Step.objects.filter(run=run, node="model").count()
    assert (run.status, model_calls, approval.decision) == ("waiting_approval", 0, Approval.Decision.PENDING), (
        f"run {run.status} with {model_calls} model calls; approval {approval.decision}: last month's approval "
        "was applied to this month's budget"
    )


def test_an_overage_refused_ends_the_run_though_the_budget_was_removed_while_it_waited(acme, triage):  # noqa: F811
    """docs/runs.md: an overage "rejected, it ends with `quota_exceeded`" — a human's refusal is
    read even when the budget it was asked about is gone by the time the run resumes."""
    budget(acme, monthly_tokens=0, on_exhausted="approve")
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval", run.message
    budget(acme)  # removed
    with schema_context("acme"):
        run = run_decide(actor=tenant_user(acme, "admin@acme.test"), run=run, approved=False, comment="Not now.")
    run = advance(run, "acme")
    with schema_context("acme"):
        model_calls = Step.objects.filter(run=run, node="model").count()
    assert (run.status, run.reason, model_calls) == ("failed", "quota_exceeded", 0), run.message
    assert run.message.endswith("A human approver refused the overage: Not now.")
