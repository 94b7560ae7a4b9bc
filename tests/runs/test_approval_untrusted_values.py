"""A tool call that waits for approval is stored as its Approval with text no column can store
(NUL, lone surrogates: a model is an untrusted remote) replaced by U+FFFD, as a step's record
is (docs/runs.md, "Durability"): the run waits for the approver instead of failing every
delivery until it is given up."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, openai_completion
from tests.runs.conftest import advance


@pytest.mark.parametrize(
    "call_id, arguments",
    [
        ("call_1", {"amount": 25000, "question": "nul \u0000 here"}),
        ("call_1", {"amount": 25000, "question": "half \ud800 a pair"}),
    ],
    ids=["nul-in-argument", "lone-surrogate-in-argument"],
)
def test_a_model_call_needing_approval_with_odd_values_waits_for_approval(acme, openai_agent, call_id, arguments):
    server, agent = openai_agent
    # amount > 10000 on the invoice entity: the finance rule asks for approval.
    server.queue(Reply(body=openai_completion(tool_calls=[(call_id, "find_invoices", arguments)])))
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Look up the big invoice.")
    try:
        advance(run, "acme")
        error = None
    except Exception as exc:  # noqa: BLE001 — what a worker's task would see
        error = exc
    with schema_context("acme"):
        run.refresh_from_db()
        approvals = list(Approval.objects.filter(run=run).values_list("step", "decision"))
    assert error is None, f"run_advance raised {type(error).__name__}: {str(error)[:200]}; run left {run.status}"
    assert run.status == Run.Status.WAITING_APPROVAL, run.status
    assert approvals == [(2, "pending")]
    with schema_context("acme"):
        stored = Approval.objects.get(run=run).arguments
    assert stored["amount"] == 25000 and "\ufffd" in stored["question"], stored
