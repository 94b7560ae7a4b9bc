"""Cancelling a run while it is about to start a sub-agent run (apps/runs/engine.py `_subagent`)."""

from django_tenants.utils import schema_context

import apps.runs.engine as engine
from apps.runs.models import Run, Step
from apps.runs.services import run_cancel
from tests.conftest import tenant_user
from tests.runs.conftest import advance, delegating_run


def test_a_parent_cancelled_just_before_its_sub_agent_run_is_created_starts_no_child(acme, monkeypatch):
    """docs/runs.md: "Cancelling a run cancels its sub-agent runs too". A cancellation committed
    after the parent's check before its `subagent` step, before the child exists, is found under
    the parent's row lock (which run_cancel takes before it cancels the children): no child is
    started, and the parent ends cancelled."""
    owner = tenant_user(acme, "owner@acme.test")
    run = delegating_run(acme)

    real_depth = engine.Attempt._depth

    def cancelled_in_between(self):
        run_cancel(actor=owner, run=self.run)  # the cancel lands after the step's check
        return real_depth(self)

    monkeypatch.setattr(engine.Attempt, "_depth", cancelled_in_between)
    run = advance(run, "acme")
    assert run.status == "cancelled"
    with schema_context("acme"):
        assert not Run.objects.filter(parent=run).exists()
        assert list(Step.objects.filter(run=run, node="tool").values_list("error", flat=True)) == ["run_cancelled"]
