"""The agent graph: the tool loop, approvals (interrupt/resume), DIS rules, limits and step records."""

import itertools

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from foundry.runtime.graph import AgentGraph, RunHooks, RunStateError
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderError, ScriptedProvider
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import agent, call, reply, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _pay_tool(server) -> dict:
    # An http tool bound to an entity, so the invoice rules apply to its calls.
    return {
        "name": "pay_invoice",
        "type": "http",
        "entity": "invoice",
        "description": "Pay an invoice.",
        "method": "POST",
        "url": server.origin + "/pay/{id}",
        "hosts": ["127.0.0.1"],
    }


def _graph(manifest, domain, script, **kwargs) -> AgentGraph:
    kwargs.setdefault("tools", LOOPBACK)
    return AgentGraph(manifest, domain, provider=ScriptedProvider(script), **kwargs)


@pytest.fixture
def paying(invoice_triage, server):
    server.routes["/pay/INV-7"] = reply(body=b'{"paid": true}')
    tools = [*invoice_triage["spec"]["tools"], _pay_tool(server)]
    return agent(invoice_triage, tools=tools, approvals={"tools": ["pay_invoice"]})


PAY_SCRIPT = [call("pay_invoice", id="INV-7", amount=420), respond("Paid.")]


def test_an_approved_call_runs_once_after_the_approval(paying, finance, server):
    steps = []
    graph = _graph(paying, finance, PAY_SCRIPT, hooks=RunHooks(on_step=steps.append))
    result = graph.start("t1", "Pay INV-7.")
    assert result.status == "waiting_approval"
    assert result.approval == {
        "kind": "approval",
        "step": 2,
        "tool": "pay_invoice",
        "tool_call_id": "call_1",
        "arguments": {"id": "INV-7", "amount": 420},
        "reasons": ["approvals.tools lists 'pay_invoice'"],
    }
    assert server.requests == []  # nothing happened before the approval
    result = graph.resume("t1", approved=True, by="ann@acme.test", comment="ok")
    assert (result.status, result.output) == ("succeeded", "Paid.")
    assert len(server.requests) == 1
    assert [s["index"] for s in steps] == [1, 2, 3]  # each step reported once, across the pause
    tool_step = result.steps[1]
    assert tool_step["status"] == "ok"
    assert tool_step["approval"] == {
        "reasons": ["approvals.tools lists 'pay_invoice'"],
        "approved": True,
        "by": "ann@acme.test",
        "comment": "ok",
    }
    assert '"paid": true' in tool_step["summary"]


def test_a_rejected_call_never_runs_and_the_model_is_told(paying, finance, server):
    graph = _graph(paying, finance, [*PAY_SCRIPT[:1]])
    graph.start("t1", "Pay INV-7.")
    result = graph.resume("t1", approved=False, by="bob", comment="wrong vendor")
    assert server.requests == []
    assert result.steps[1]["status"] == "rejected"
    # The scripted provider's fallback answers with the last tool result: the rejection.
    assert result.output == "pay_invoice returned: A human approver rejected this call: wrong vendor"


def test_a_malformed_approval_answer_counts_as_a_rejection(paying, finance, server):
    graph = _graph(paying, finance, PAY_SCRIPT)
    graph.start("t1", "Pay INV-7.")
    result = graph._invoke(Command(resume={"approved": "yes"}), "t1")
    assert result.steps[1]["status"] == "rejected" and server.requests == []


def test_a_run_resumes_in_another_process_from_its_checkpoint(paying, finance, server):
    saver = InMemorySaver()
    _graph(paying, finance, PAY_SCRIPT, checkpointer=saver).start("t1", "Pay INV-7.")
    # A new graph and a new provider (another worker) on the same checkpoints.
    result = _graph(paying, finance, PAY_SCRIPT, checkpointer=saver).resume("t1", approved=True)
    assert (result.status, result.output, len(server.requests)) == ("succeeded", "Paid.", 1)


def test_resuming_a_run_that_does_not_wait_is_refused(invoice_triage, finance):
    graph = _graph(invoice_triage, finance, [respond("Hi.")])
    assert graph.start("t1", "Hello").status == "succeeded"
    with pytest.raises(RunStateError) as info:
        graph.resume("t1", approved=True)
    assert info.value.code == "run_not_waiting"


def test_a_require_approval_rule_pauses_a_matching_call(invoice_triage, finance, server):
    server.routes["/pay/INV-9"] = reply(body=b"{}")
    manifest = agent(invoice_triage, tools=[_pay_tool(server)], approvals={})
    graph = _graph(manifest, finance, [call("pay_invoice", id="INV-9", amount="25000.00"), respond("Paid.")])
    result = graph.start("t1", "Pay INV-9.")
    assert result.status == "waiting_approval"
    assert result.approval["reasons"] == [
        "rule 'large-invoice-needs-approval': Invoices above 10,000 need a human approver."
    ]
    assert server.requests == []
    assert graph.resume("t1", approved=True).status == "succeeded"
    assert len(server.requests) == 1


def test_a_call_below_the_rule_threshold_runs_without_approval(invoice_triage, finance, server):
    server.routes["/pay/INV-9"] = reply(body=b"{}")
    manifest = agent(invoice_triage, tools=[_pay_tool(server)], approvals={})
    result = _graph(manifest, finance, [call("pay_invoice", id="INV-9", amount=99), respond("Paid.")]).start("t", "x")
    assert result.status == "succeeded" and len(server.requests) == 1


def test_a_deny_rule_blocks_the_call_and_the_run_goes_on(invoice_triage, finance):
    script = [call("find_vendors", risk="high"), respond("I cannot pay that vendor.")]
    result = _graph(invoice_triage, finance, script).start("t1", "Pay ACME.")
    assert (result.status, result.output) == ("succeeded", "I cannot pay that vendor.")
    step = result.steps[1]
    assert step["status"] == "denied"
    assert step["summary"] == (
        "Refused by the domain's business rules: rule 'no-payment-to-high-risk-vendor': "
        "High-risk vendors are paid only through the treasury desk."
    )


def test_a_warn_rule_is_recorded_on_the_step(invoice_triage, finance):
    domain = {**finance, "spec": {**finance["spec"], "rules": [
        {"name": "euro-only", "entity": "invoice", "when": 'currency != "EUR"', "then": "warn", "message": "Not EUR."}
    ]}}  # fmt: skip
    result = _graph(invoice_triage, domain, [call("find_invoices", currency="USD"), respond("ok")]).start("t", "x")
    assert result.steps[1]["status"] == "ok"
    assert result.steps[1]["warnings"] == ["rule 'euro-only': Not EUR."]


def test_a_mistyped_argument_is_a_tool_error_the_model_sees(invoice_triage, finance):
    result = _graph(invoice_triage, finance, [call("find_invoices", amount="lots")]).start("t", "x")
    assert result.steps[1]["status"] == "error" and result.steps[1]["error"] == "tool_argument_invalid"
    assert (
        result.output
        == "find_invoices returned: Error (tool_argument_invalid): Argument 'amount': 'lots' is not a number."
    )


def test_an_unknown_tool_is_a_tool_error_and_the_run_goes_on(invoice_triage, finance):
    result = _graph(invoice_triage, finance, [call("teleport"), respond("Sorry.")]).start("t", "x")
    assert result.status == "succeeded"
    assert result.steps[1]["error"] == "tool_unknown"


def test_several_tool_calls_in_one_message_run_one_step_each(invoice_triage, finance):
    class TwoCalls(ScriptedProvider):
        def _step(self, step, number):
            message = super()._step(step, number)
            if number == 1:
                message.tool_calls = [
                    {"name": "find_invoices", "args": {}, "id": "a", "type": "tool_call"},
                    {"name": "find_vendors", "args": {}, "id": "b", "type": "tool_call"},
                ]
            return message

    graph = AgentGraph(invoice_triage, finance, provider=TwoCalls([call("x"), respond("Done.")]))
    result = graph.start("t", "x")
    assert [(s["node"], s.get("tool")) for s in result.steps] == [
        ("model", None),
        ("tool", "find_invoices"),
        ("tool", "find_vendors"),
        ("model", None),
    ]


# --- limits -------------------------------------------------------------------------------------------


def test_max_steps_ends_the_run(invoice_triage, finance):
    manifest = agent(invoice_triage, limits={"max_steps": 3})
    result = _graph(manifest, finance, [call("find_invoices")] * 5).start("t", "x")
    assert (result.status, result.reason) == ("failed", "max_steps")
    assert result.message == "The run reached its limit of 3 steps."
    assert len(result.steps) == 3


def test_max_tokens_ends_the_run(invoice_triage, finance):
    manifest = agent(invoice_triage, limits={"max_tokens": 50})
    result = _graph(manifest, finance, [call("find_invoices"), respond("Done.")]).start("t", "x")
    assert (result.status, result.reason) == ("failed", "max_tokens")
    assert result.message.startswith(f"The run used {result.input_tokens + result.output_tokens} tokens")
    assert len(result.steps) == 1  # stopped right after the call that went over


def test_the_timeout_ends_the_run(invoice_triage, finance):
    ticks = itertools.count(0, 0.6)  # each clock reading is 0.6 s after the previous one
    manifest = agent(invoice_triage, limits={"timeout_seconds": 1})
    graph = _graph(manifest, finance, [call("find_invoices")] * 5, clock=lambda: next(ticks))
    result = graph.start("t", "x")
    assert (result.status, result.reason) == ("failed", "timeout")
    assert result.message == "The run reached its time limit of 1 s."
    assert len(result.steps) == 2  # 0.6 s + 0.6 s of work: the third step may not start


def test_cancellation_ends_the_run_before_the_next_step(invoice_triage, finance):
    steps = []
    hooks = RunHooks(on_step=steps.append, cancelled=lambda: len(steps) >= 2)
    result = _graph(invoice_triage, finance, [call("find_invoices")] * 5, hooks=hooks).start("t", "x")
    assert (result.status, result.reason, len(result.steps)) == ("cancelled", "cancelled", 2)


def test_a_failing_model_call_fails_the_run_with_its_reason(invoice_triage, finance):
    class Down(ScriptedProvider):
        def complete(self, messages, tools, *, timeout=None):
            raise ProviderError("provider_call_failed", "connection refused")

    result = AgentGraph(invoice_triage, finance, provider=Down()).start("t", "x")
    assert (result.status, result.reason) == ("failed", "model_failed")
    assert result.message == "The model call failed: connection refused"
    assert result.steps[0]["status"] == "error"


def test_steps_record_what_happened(invoice_triage, finance):
    result = _graph(invoice_triage, finance, [call("find_invoices", question="AP?"), respond("Done.")]).start("t", "x")
    model, tool, final = result.steps
    assert model["node"] == "model" and model["tool_calls"] == ["find_invoices"]
    assert model["summary"] == "calls find_invoices"
    assert (model["provider"], model["input_tokens"] > 0, model["output_tokens"] > 0) == ("scripted", True, True)
    assert (tool["tool"], tool["arguments"], tool["status"]) == ("find_invoices", {"question": "AP?"}, "ok")
    assert tool["summary"].startswith('{"domain": {"name": "finance", "version": 1}')
    assert all(s["duration_ms"] >= 0 for s in result.steps)
    assert result.input_tokens == sum(s["input_tokens"] for s in result.steps)
    assert final["summary"] == "Done."
