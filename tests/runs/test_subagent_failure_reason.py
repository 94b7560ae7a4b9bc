"""A sub-agent's run that failed is reported to its parent by its own reason, however long it took."""

import time

from django_tenants.utils import schema_context

import apps.runs.engine as engine
from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import DELEGATE_SCRIPT, FINANCE, HELPER_TESTS, SUBAGENT, agent_yaml, deploy


def test_a_child_that_failed_slowly_is_reported_by_its_own_reason_not_as_a_timeout(acme, monkeypatch):
    """The helper stops at its step limit after longer than its parent had left: the parent's
    tool step says the child failed at `max_steps`, not that it "took longer than this run had
    left" (the child runs under its own limits; the parent's time limit is its own)."""
    deploy(acme, FINANCE, agent_yaml("helper", limits="  limits: {max_steps: 1}\n" + HELPER_TESTS))
    lead = deploy(acme, agent_yaml("lead", tools=SUBAGENT, limits="  limits: {timeout_seconds: 1}\n"))
    advance = engine.run_advance

    def slow_child(run_id):
        outcome = advance(run_id)
        time.sleep(1.1)  # past the second the parent had left
        return outcome

    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        run = run_start(actor=owner, agent=lead, input="Delegate.", script=DELEGATE_SCRIPT)
        monkeypatch.setattr(engine, "run_advance", slow_child)
        advance(run.pk)
        child = Run.objects.get(parent=run)
        tool = Step.objects.get(run=run, node="tool")
    assert (child.status, child.reason) == ("failed", "max_steps")
    assert tool.error == "subagent_failed", (tool.error, tool.summary)
    assert "max_steps" in tool.summary, tool.summary
