"""Sub-agents and cancellation when the worker running them was lost (apps/runs/engine.py)."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.engine import Attempt
from apps.runs.models import Run
from apps.runs.services import run_cancel
from tests.conftest import tenant_user
from tests.runs.conftest import Killed, advance, delegating_run


def test_a_parent_cancelled_while_its_worker_was_lost_mid_child_does_not_leave_the_child_running(acme, monkeypatch):
    """docs/runs.md, Sub-agents: "Cancelling a run cancels its sub-agent runs too; a child in the
    middle of a step stops before its next one, and the parent after it." Durability: "A run
    cancelled while its worker was lost ends `cancelled` when the task comes back".

    The worker dies in the middle of the helper's run (after its first step), the lead run is
    cancelled, and the lead's task comes back (the dead worker's locks are free). By the time the
    lead ends `cancelled`, its child, which has no task of its own (a sub-agent runs inside its
    parent's attempt), is `cancelled` too (it was left `running` until the `runs.sweep` beat job,
    5+ minutes later)."""
    run = delegating_run(acme)
    record = Attempt._record

    def record_then_die(self, step, payload):
        record(self, step, payload)
        if self.run.parent_id is not None and step["index"] == 1:
            raise Killed()  # the worker process dies in the middle of the child's run

    monkeypatch.setattr(Attempt, "_record", record_then_die)
    with pytest.raises(Killed):
        advance(run, "acme")
    monkeypatch.setattr(Attempt, "_record", record)

    with schema_context("acme"):
        run_cancel(actor=tenant_user(acme, "owner@acme.test"), run=Run.objects.get(pk=run.pk))
    run = advance(run, "acme")  # the lead's task, put back when its worker died, comes back
    assert run.status == Run.Status.CANCELLED

    with schema_context("acme"):
        child = Run.objects.get(parent=run)
    assert child.cancel_requested_at is not None
    assert (child.status, child.reason) == (Run.Status.CANCELLED, "cancelled")
