"""An approved overage outlives a lost worker: the model step made under it records the approval,
and the worker that takes the run over replays that step with it, so the same overage is not
asked for again (docs/runs.md, "Quotas" and "Durability")."""

from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from apps.runs.services import run_decide
from tests.conftest import tenant_user
from tests.runs.conftest import advance, advance_dying_after_record, triage  # noqa: F401 — fixture
from tests.runs.test_engine import start
from tests.runs.test_quotas import budget, spend


def test_an_overage_approved_before_a_lost_worker_is_not_asked_again(acme, triage, monkeypatch):  # noqa: F811
    budget(acme, monthly_tokens=100, on_exhausted="approve")
    spend(acme, 100)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval"
    with schema_context("acme"):
        run = run_decide(actor=tenant_user(acme, "admin@acme.test"), run=run, approved=True, comment="Quarter end.")

    advance_dying_after_record(run, monkeypatch, 1)

    run = advance(run, "acme")  # another worker takes the run over
    with schema_context("acme"):
        approvals = list(Approval.objects.filter(run=run).values_list("step", "tool", "decision"))
    assert run.status == Run.Status.SUCCEEDED, (
        f"run {run.status} ({run.reason}); approvals: {approvals} — the approved overage was asked again"
    )
