"""TenantSaver holds a task's channel writes for its next call (apps/runs/checkpoints.py): what a
graph's invocation leaves held is written, writes beside an interrupt are not held, and a run
whose interrupt a checkpoint database lost resumes with the decision already taken."""

import operator
import threading
import time
import uuid
from typing import Annotated, TypedDict

from django_tenants.utils import schema_context
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from apps.runs.checkpoints import TenantSaver, checkpointer
from apps.runs.models import Approval, Run
from apps.runs.services import run_decide, run_start
from foundry.runtime import AgentGraph, RunStateError
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy


def start(tenant, agent, text: str, *, script=None) -> Run:
    with schema_context(tenant.schema_name):
        return run_start(actor=tenant_user(tenant, f"owner@{tenant.slug}.test"), agent=agent, input=text, script=script)


def test_the_last_steps_channel_writes_are_stored_when_a_run_ends(acme, monkeypatch):
    """LangGraph waits only for a task's delta-channel writes before the next checkpoint: a last
    task that writes none (every stop before a step: max_steps, cancelled, ...) may have its
    writes held after the final checkpoint. AgentGraph flushes the saver once the invocation
    returns, so they are stored (the race is made certain here by slowing that write)."""
    dump = TenantSaver._dump_writes

    def slow_dump(self, thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes):
        if [channel for channel, _ in writes] == ["outcome"]:
            time.sleep(0.3)
        return dump(self, thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes)

    monkeypatch.setattr(TenantSaver, "_dump_writes", slow_dump)
    agent = deploy(acme, FINANCE, agent_yaml(limits="  limits: {max_steps: 2}\n"))
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {}}}] * 5
    run = advance(start(acme, agent, "Loop.", script=script), "acme")
    assert (run.status, run.reason) == ("failed", "max_steps")

    reader = checkpointer("acme")
    last = reader.get_tuple({"configurable": {"thread_id": str(run.pk), "checkpoint_ns": ""}})
    assert last.checkpoint["channel_values"].get("outcome", {}).get("reason") == "max_steps"
    written = {channel for _, channel, _ in reader.get_tuple(last.parent_config).pending_writes}
    assert "outcome" in written, sorted(written)


class State(TypedDict, total=False):
    log: Annotated[list, operator.add]


def test_a_sibling_task_finished_beside_an_interrupt_is_not_run_again_on_resume(acme):
    """An interrupted step makes no checkpoint: a task of the same step that finishes after the
    interrupt was written is written at once, so a resume hands its writes back instead of
    running it (and its side effect) again."""
    made = []
    interrupted = threading.Event()

    def ask(state):
        interrupted.set()
        return {"log": [f"asked:{interrupt('approve?')}"]}

    def book(state):
        interrupted.wait(5)
        time.sleep(0.3)  # finishes after its sibling's interrupt was written
        made.append("booked")
        return {"log": ["booked"]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("book", book)
    builder.add_edge(START, "ask")
    builder.add_edge(START, "book")
    config = {"configurable": {"thread_id": f"parallel-{uuid.uuid4().hex}"}}
    graph = builder.compile(checkpointer=checkpointer("acme"))
    first = graph.invoke({"log": []}, config, durability="async", version="v2")
    assert first.interrupts and made == ["booked"]

    resumed = builder.compile(checkpointer=checkpointer("acme"))  # the next worker's saver
    out = resumed.invoke(Command(resume="yes"), config, durability="async", version="v2")
    assert made == ["booked"], out.value
    assert sorted(out.value["log"]) == ["asked:yes", "booked"]


def test_a_run_whose_interrupt_was_lost_resumes_with_the_decision_already_taken(acme, triage):
    """A checkpoint database that crashed could lose a run's interrupt (its rows are elsewhere):
    approved, the run asks again at the same step; the decision taken stands and the run goes on,
    rather than waiting for an approval no one can decide (run_not_waiting)."""
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    assert run.status == "waiting_approval"
    with checkpointer("acme")._cursor() as cur:  # the crash: the interrupt is gone
        cur.execute("DELETE FROM checkpoint_writes WHERE thread_id = %s AND channel = '__interrupt__'", (str(run.pk),))

    with schema_context("acme"):
        run_decide(actor=tenant_user(acme, "owner@acme.test"), run=run, approved=True, comment="ok")
    run = advance(run, "acme")  # asks again at the decided step, answered with the decision at once
    with schema_context("acme"):
        assert list(Approval.objects.filter(run=run).values_list("decision", flat=True)) == ["approved"]
    assert run.status == "succeeded", (run.status, run.reason, run.message)


LOSE_INTERRUPT = "DELETE FROM checkpoint_writes WHERE thread_id = %s AND channel = '__interrupt__'"


def test_a_run_whose_interrupts_are_never_kept_fails_instead_of_asking_for_ever(acme, triage, monkeypatch):
    """A checkpoint database that keeps losing the run's interrupt: answered once with the decision
    taken, the run asks again, and fails as `approval_lost` rather than going round for ever."""
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    with schema_context("acme"):
        run_decide(actor=tenant_user(acme, "owner@acme.test"), run=run, approved=True, comment="ok")
    real_resume = AgentGraph.resume

    def resume_losing_the_interrupt(self, thread_id, **decision):
        with checkpointer("acme")._cursor() as cur:
            cur.execute(LOSE_INTERRUPT, (thread_id,))
        try:
            return real_resume(self, thread_id, **decision)
        except RunStateError:  # nothing to resume (the interrupt is gone): the graph asks again
            return self.recover(thread_id)

    monkeypatch.setattr(AgentGraph, "resume", resume_losing_the_interrupt)
    run = advance(run, "acme")
    assert (run.status, run.reason) == ("failed", "approval_lost"), (run.status, run.reason, run.message)
