"""A worker stalled past its lock's expiry writes no LangGraph checkpoint after another worker
took the run over: checkpoint writes are fenced by the lock as Step rows and the run's end are
(docs/runs.md, "Durability": "one stalled past the lock's expiry stops without recording
anything")."""

import threading
import time

from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from apps.runs.engine import Attempt, run_advance
from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_decide, run_start
from foundry.errors import ServiceError
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, agent_yaml, deploy, worker_start

VENDORS = (
    "    - name: find_vendors\n      type: dis_query\n      entity: vendor\n      description: Describe vendors.\n"
)
GATED = "  approvals:\n    tools: [find_vendors]\n"


def test_a_stalled_workers_late_checkpoint_does_not_undo_the_approval_its_successor_waits_for(
    fresh_tenant, django_db_blocker, settings, monkeypatch
):
    """Worker A records step 1 and stalls before LangGraph checkpoints it; its lock expires and
    worker B takes the run over, replays step 1 and stops at the approval of step 4. A wakes,
    stops before its next step ("lock_lost") — and its checkpoint of step 1 is refused too, so it
    does not become the thread's newest: once step 4 is approved, the run resumes from B's
    checkpoint and finishes (a stale one made it ask the same approval again and stay
    `waiting_approval` with nothing to decide)."""
    settings.FOUNDRY_RUN_LOCK_SECONDS = 1.5  # renewed every 0.5 s
    with django_db_blocker.unblock():
        tenant = fresh_tenant
        schema = tenant.schema_name
        agent = deploy(tenant, FINANCE, agent_yaml(tools=VENDORS, approvals=GATED))
        script = [
            {"tool_call": {"tool": "find_invoices", "arguments": {}}},
            {"tool_call": {"tool": "find_vendors", "arguments": {}}},
            {"respond": "done"},
        ]
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        with schema_context(schema):
            run = run_start(actor=owner, agent=agent, input="Check invoices, then vendors.", script=script)

        record = Attempt._record
        a_stalled, wake_a = threading.Event(), threading.Event()

        def stalling_record(self, step, payload):
            record(self, step, payload)  # step written (Step row committed)
            if threading.current_thread().name == "A" and step["index"] == 1:
                a_stalled.set()  # A stalls here, before LangGraph checkpoints the step
                assert wake_a.wait(60)

        monkeypatch.setattr(Attempt, "_record", stalling_record)
        outcomes = {}

        a = worker_start(schema, run.pk, outcomes, "A")
        assert a_stalled.wait(60)
        # A's lock expires while it is stalled; B (a re-delivered copy) takes the run over.
        get_redis_connection("default").delete(f"foundry:run-lock:{schema}:{run.pk}")
        b = worker_start(schema, run.pk, outcomes, "B")
        b.join(60)
        time.sleep(1.0)  # A's renewer sees the lock is not its own any more
        wake_a.set()
        a.join(60)
        assert outcomes == {"A": "lock_lost", "B": "waiting_approval"}, outcomes

        with schema_context(schema):
            waiting = Run.objects.get(pk=run.pk)
            run_decide(actor=owner, run=waiting, approved=True, step=4)
            outcome = run_advance(run.pk)  # the task run_decide queued
            final = Run.objects.get(pk=run.pk)
            approvals = list(Approval.objects.filter(run=run).values_list("step", "decision"))
            steps = list(Step.objects.filter(run=run).order_by("index").values_list("index", "node", "tool"))
            try:
                run_decide(actor=owner, run=final, approved=True)
                decidable = "decidable"
            except ServiceError as exc:
                decidable = exc.code
    assert final.status == "succeeded", (
        f"after approving step 4 the run is {final.status} ({outcome!r}); approvals {approvals}; steps {steps};"
        f" deciding again: {decidable}"
    )
