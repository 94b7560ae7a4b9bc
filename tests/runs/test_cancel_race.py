"""Cancelling a running run: it must stop before its next step (docs/runs.md, "Limits and
cancellation"), whenever between two steps the cancellation arrives."""

from django_tenants.utils import schema_context

from apps.runs.engine import Attempt
from apps.runs.models import Run, Step
from apps.runs.services import run_cancel
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy, http_tool
from tests.runs.test_engine import start


def test_a_cancel_arriving_right_after_a_step_is_recorded_stops_the_run_before_the_next_step(
    acme, ledger, loopback_allowed, monkeypatch
):
    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "done"}]
    run = start(acme, agent, "Book entry 1.", script=script)
    owner = tenant_user(acme, "owner@acme.test")
    original = Attempt._record

    def record_then_someone_cancels(self, step, payload):
        original(self, step, payload)
        if step["index"] == 1:
            # A user presses "Cancel run" just after step 1 is committed, before step 2 begins.
            run_cancel(actor=owner, run=Run.objects.get(pk=self.run.pk))

    monkeypatch.setattr(Attempt, "_record", record_then_someone_cancels)
    run = advance(run, "acme")

    with schema_context("acme"):
        steps = list(Step.objects.filter(run=run).order_by("index").values_list("index", "node", "tool"))
    # Expected: the run is cancelled before step 2 — the POST to the ledger is never made.
    assert (run.status, run.reason) == ("cancelled", "cancelled")
    assert ledger.booked == [], f"the http call was made after the run was cancelled; steps {steps}"
    assert steps == [(1, "model", "")]


def test_a_cancel_arriving_while_a_worker_picks_up_an_approved_run_stops_it_before_the_approved_call(
    acme, triage, monkeypatch
):
    from apps.runs.services import run_decide

    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    assert run.status == "waiting_approval"
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        run_decide(actor=owner, run=run, approved=True, comment="ok")
    original = Attempt._graph

    def graph_then_someone_cancels(self):
        graph = original(self)
        # The worker has claimed the run (it is `running`); a user cancels it now, before the
        # approved call is made.
        run_cancel(actor=owner, run=Run.objects.get(pk=self.run.pk))
        return graph

    monkeypatch.setattr(Attempt, "_graph", graph_then_someone_cancels)
    run = advance(run, "acme")

    with schema_context("acme"):
        steps = list(Step.objects.filter(run=run).order_by("index").values_list("index", "node", "tool"))
    assert (run.status, run.reason) == ("cancelled", "cancelled")
    assert steps == [(1, "model", "")], f"steps made after the cancellation: {steps}"


def test_a_cancel_redis_could_not_take_stops_the_run_at_the_next_steps_record(
    acme, ledger, loopback_allowed, monkeypatch
):
    """The worker looks for a cancellation's signal in Redis before each step; the cancellation
    itself is the run's row. When Redis cannot take the signal, the cancellation still succeeds,
    and the record of the step under way reads it from the row: nothing after that step."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from apps.runs import locks

    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    script = [
        {"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}},
        {"tool_call": {"tool": "ledger", "arguments": {"id": "2"}}},
        {"respond": "done"},
    ]
    run = start(acme, agent, "Book entries 1 and 2.", script=script)
    owner = tenant_user(acme, "owner@acme.test")
    original = Attempt._record

    class Unreachable:
        def pipeline(self, **kwargs):
            raise RedisConnectionError("Redis is away")

    def record_then_someone_cancels(self, step, payload):
        original(self, step, payload)
        if step["index"] == 1:
            with monkeypatch.context() as away:
                away.setattr(locks, "get_redis_connection", lambda alias: Unreachable())
                cancelled = run_cancel(actor=owner, run=Run.objects.get(pk=self.run.pk))
            assert cancelled.cancel_requested_at is not None

    monkeypatch.setattr(Attempt, "_record", record_then_someone_cancels)
    run = advance(run, "acme")

    with schema_context("acme"):
        steps = list(Step.objects.filter(run=run).order_by("index").values_list("index", "node", "tool"))
    assert (run.status, run.reason) == ("cancelled", "cancelled")
    assert ledger.booked == ["/entries/1"]  # step 2, under way when the cancellation came, and no more
    assert steps == [(1, "model", ""), (2, "tool", "ledger")]


def test_a_cancel_rolled_back_after_its_signal_went_out_does_not_stop_the_run(
    acme, ledger, loopback_allowed, monkeypatch
):
    """The signal goes out before the cancellation commits; the worker that sees it reads the
    run's row, and a cancellation that never committed is none: the run goes on to its end."""
    from django.db import transaction

    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "done"}]
    run = start(acme, agent, "Book entry 1.", script=script)
    owner = tenant_user(acme, "owner@acme.test")
    original = Attempt._record

    class RolledBack(Exception):
        pass

    def record_then_a_cancel_rolls_back(self, step, payload):
        original(self, step, payload)
        if step["index"] == 1:
            try:
                with transaction.atomic():
                    run_cancel(actor=owner, run=Run.objects.get(pk=self.run.pk))
                    raise RolledBack()  # say, the request failed after the service returned
            except RolledBack:
                pass

    monkeypatch.setattr(Attempt, "_record", record_then_a_cancel_rolls_back)
    run = advance(run, "acme")

    assert (run.status, run.output) == ("succeeded", "done")
    assert ledger.booked == ["/entries/1"]
