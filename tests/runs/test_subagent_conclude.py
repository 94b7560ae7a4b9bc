"""A sub-agent's run whose lock is found lost as its end is about to be recorded."""

from django_tenants.utils import schema_context

import apps.runs.engine as engine
from apps.runs.engine import Attempt
from apps.runs.models import Step
from tests.runs.conftest import delegating_run


def test_a_child_losing_its_lock_while_concluding_makes_the_parent_wait_in_the_queue(acme, monkeypatch):
    """The child's lock expires (a stall) just before its end is recorded: another worker may hold
    the child now, and the child's attempt ends `lock_lost`. The parent waits in the queue for the
    child ("A sub-agent's run held by another worker makes its parent wait in the queue",
    docs/runs.md) and its task retries: it is not left `running` without a lock or a task, as if
    it had lost its own lock, for the sweep to count as a lost worker minutes later."""
    run = delegating_run(acme)
    conclude = Attempt._conclude

    def conclude_child_lock_lost(self, result):
        if self.run.parent_id is not None:
            self.lock._lost.set()  # the child's lock expired meanwhile
        return conclude(self, result)

    monkeypatch.setattr(Attempt, "_conclude", conclude_child_lock_lost)
    with schema_context("acme"):
        outcome = engine.run_advance(run.pk)
        run.refresh_from_db()
        steps = list(Step.objects.filter(run=run, node="tool"))
    assert steps == []  # nothing recorded for the sub-agent call yet
    assert (outcome, run.status) == ("locked", "queued"), (outcome, run.status)
