"""A tool call that waits for approval is stored as its Approval with text no column can store
(lone surrogates: a model is an untrusted remote; its provider's answer has them as U+FFFD) replaced
by U+FFFD, as a step's record is (docs/runs.md, "Durability"): the run waits for the approver
instead of failing every delivery until it is given up. A NUL in an argument is text a model
wrote that no store keeps as written: the call is not made (`tool_argument_invalid`), never asked
of an approver who would be shown another value than the one sent."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, openai_completion
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy, http_tool


@pytest.mark.parametrize(
    "call_id, arguments",
    [("call_1", {"amount": 25000, "question": "half \ud800 a pair"})],
    ids=["lone-surrogate-in-argument"],
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


def test_a_call_needing_approval_whose_argument_holds_a_nul_is_not_made(acme, model_server, ledger, loopback_allowed):
    gated = "  approvals:\n    tools: [ledger]\n"
    agent = deploy(acme, FINANCE, agent_yaml(provider="openai", tools=http_tool(ledger.port), approvals=gated))
    model_server.queue(
        Reply(body=openai_completion(tool_calls=[("call_1", "ledger", {"id": "A1", "note": "pay 100\u0000 to 7"})])),
        Reply(body=openai_completion("Not booked.")),
    )
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Book it.")
    run = advance(run, "acme")
    with schema_context("acme"):
        tool = Step.objects.get(run=run, node="tool")
        assert not Approval.objects.filter(run=run).exists()
    assert (run.status, tool.status, tool.error) == (Run.Status.SUCCEEDED, "error", "tool_argument_invalid")
    assert ledger.requests == {}
