"""An operator taking a private network off a tenant's allow-list while a run of it is under way
(`manage.py tenant_http_networks SLUG --remove CIDR`, docs/runs.md "HTTP tools and private
networks"): the run stops before its next step and goes on in a new attempt, whose http tools and
model provider follow the list as it is then. The list is changed as another process would (the
operator's command), with no hook of this worker's run; TENANT_CHECK_SECONDS is 0 here (5 s)."""

from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.providers.services import credential_set
from apps.runs import engine
from apps.runs.engine import Attempt
from apps.runs.models import Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import FakeModelServer, Reply, openai_completion
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy, http_tool


def _two_bookings(acme, ledger):
    """A run of acme whose agent books two ledger entries (steps 2 and 4) and answers."""
    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    script = [
        {"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}},
        {"tool_call": {"tool": "ledger", "arguments": {"id": "2"}}},
        {"respond": "done"},
    ]
    with schema_context("acme"):
        return run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Book.", script=script)


def _removed_after_first_tool_step(monkeypatch) -> list:
    record = Attempt._record
    removed = []

    def record_then_operator_removes(self, step, payload):
        record(self, step, payload)
        if step.get("node") == "tool" and not removed:
            with schema_context("public"):  # the operator's command, in another process
                call_command("tenant_http_networks", "acme", "--remove", "127.0.0.1/32")
            removed.append(True)

    monkeypatch.setattr(Attempt, "_record", record_then_operator_removes)
    return removed


def test_an_http_tool_of_a_run_under_way_no_longer_reaches_a_network_removed_from_the_list(acme, ledger, monkeypatch):
    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.1/32")
    run = _two_bookings(acme, ledger)
    removed = _removed_after_first_tool_step(monkeypatch)

    run = advance(run, "acme")
    assert removed
    assert (run.status, run.recoveries) == ("queued", 0)  # back in the queue, not a lost worker
    assert ledger.booked == ["/entries/1"]

    run = advance(run, "acme")  # the next attempt, under the list as it is now
    with schema_context("acme"):
        tools = list(Step.objects.filter(run=run, node="tool").order_by("index"))
    assert ledger.booked == ["/entries/1"], f"reached after removal: {ledger.booked}"
    assert [(t.status, t.error) for t in tools] == [("ok", ""), ("error", "http_address_refused")]
    assert run.status == "succeeded"


def test_a_model_server_on_a_network_removed_from_the_list_is_not_called_again_by_a_run_under_way(
    acme, settings, monkeypatch
):
    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)
    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = []
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.1/32")
    server = FakeModelServer()
    try:
        owner = tenant_user(acme, "owner@acme.test")
        with schema_context("acme"):
            credential_set(
                actor=owner, provider="openai", api_key="sk-test-abcdef123456", base_url=f"{server.origin}/v1"
            )
        agent = deploy(acme, FINANCE, agent_yaml(provider="openai"))
        server.queue(
            Reply(body=openai_completion(tool_calls=[("c1", "find_invoices", {"question": "What is AP?"})])),
            Reply(body=openai_completion("done")),
        )
        with schema_context("acme"):
            run = run_start(actor=owner, agent=agent, input="Describe invoices.")
        removed = _removed_after_first_tool_step(monkeypatch)

        run = advance(run, "acme")
        assert removed and run.status == "queued"
        run = advance(run, "acme")
        assert len(server.requests) == 1, f"the model server got {len(server.requests)} calls; run {run.status}"
        assert (run.status, run.reason) == ("failed", "model_failed"), run.message
        assert "127.0.0.1" in run.message and "not let model providers reach it" in run.message, run.message
    finally:
        server.close()


def test_the_task_sends_a_run_stopped_by_a_changed_list_again_at_once(acme, ledger, monkeypatch):
    """Through the Celery task: the stopped attempt's task is retried at once (no countdown), and
    the run ends in the same delivery chain, its second call refused."""
    import apps.runs.tasks as run_tasks

    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.1/32")
    run = _two_bookings(acme, ledger)
    removed = _removed_after_first_tool_step(monkeypatch)
    retries = []
    retry = run_tasks.run_execute.retry
    monkeypatch.setattr(
        run_tasks.run_execute, "retry", lambda *a, **kw: retries.append(kw.get("countdown")) or retry(*a, **kw)
    )

    run_tasks.run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)
    with schema_context("acme"):
        run.refresh_from_db()
    assert removed and retries == [0]
    assert (run.status, ledger.booked) == ("succeeded", ["/entries/1"])


def test_another_tenants_list_changing_does_not_stop_this_tenants_run(acme, globex, ledger, monkeypatch):
    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.1/32")
    call_command("tenant_http_networks", "globex", "--allow", "127.0.0.1/32")
    run = _two_bookings(acme, ledger)
    record = Attempt._record

    def record_then_globex_changes(self, step, payload):
        record(self, step, payload)
        if step.get("node") == "tool" and step["index"] == 2:
            with schema_context("public"):
                call_command("tenant_http_networks", "globex", "--remove", "127.0.0.1/32")

    monkeypatch.setattr(Attempt, "_record", record_then_globex_changes)
    run = advance(run, "acme")
    assert (run.status, ledger.booked) == ("succeeded", ["/entries/1", "/entries/2"])
