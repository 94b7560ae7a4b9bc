"""A sub-agent's run that moved on once its attempt in the parent's worker ended (approved at once,
claimed by a copy of its own task) makes the parent wait in the queue for its answer, as a child
held elsewhere does (docs/runs.md, Sub-agents): it was recorded as a failed sub-agent while it
went on, its answer lost to the parent."""

from django_tenants.utils import schema_context

import apps.runs.engine as engine
from apps.runs.models import Run, Step
from apps.runs.services import run_decide, run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

SUB = "    - name: ask_helper\n      type: subagent\n      description: Ask the helper.\n      agent: helper\n"
# The helper asks for an approval before its one dis_query call, then answers.
HELPER = (
    "  approvals:\n    tools: [find_invoices]\n"
    "  tests:\n    - name: looks-up\n      input: What is AP?\n      script:\n"
    '        - tool_call: {tool: find_invoices, arguments: {question: "What is AP?"}}\n'
    "        - respond: AP is accounts payable.\n"
)
SCRIPT = [{"tool_call": {"tool": "ask_helper", "arguments": {"input": "What is AP?"}}}, {"respond": "done"}]


def test_a_child_approved_right_after_it_paused_is_not_recorded_as_a_failed_sub_agent(acme, monkeypatch):
    owner = tenant_user(acme, "owner@acme.test")
    operator = tenant_user(acme, "operator@acme.test")
    deploy(acme, FINANCE, agent_yaml("helper", limits=HELPER))
    lead = deploy(acme, agent_yaml("lead", tools=SUB))
    with schema_context("acme"):
        run = run_start(actor=owner, agent=lead, input="Delegate.", script=SCRIPT)

    original = engine.run_advance

    def advance_then_approved(run_id):
        outcome = original(run_id)  # the child pauses for its approval and releases its lock
        child = Run.objects.get(pk=run_id)
        if child.status == "waiting_approval":
            # An approver (or an automated one polling the API) decides at once: the child is
            # queued again, its own task takes it from here.
            run_decide(actor=operator, run=child, approved=True)
        return outcome

    monkeypatch.setattr(engine, "run_advance", advance_then_approved)
    run = advance(run, "acme")
    monkeypatch.undo()
    with schema_context("acme"):
        child = Run.objects.get(parent=run)
        tool = Step.objects.filter(run=run, node="tool").first()
    assert child.status == "queued"  # approved, going on
    assert tool is None, (tool.status, tool.error, tool.summary)  # no step recorded for it yet
    assert run.status == "queued"  # the parent waits for the child
    child = advance(child, "acme")  # the child's own task
    run = advance(run, "acme")  # then the parent's
    with schema_context("acme"):
        (tool,) = Step.objects.filter(run=run, node="tool")
    assert (child.status, run.status, tool.status) == ("succeeded", "succeeded", "ok")
    assert "AP is accounts payable." in (tool.summary + str(tool.record))
