"""A tenant's allowed private networks changing between the task loading its tenant (TenantTask)
and the run's claim: the attempt's http tools and provider are built from the list its claim read
(the one every later look compares with), not from the Tenant the task loaded earlier, which an
attempt claimed just after an operator removed a network used to keep reaching, never restarting."""

from django.core.management import call_command
from django_tenants.utils import schema_context

from apps.runs import engine
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, agent_yaml, deploy, http_tool


def test_a_network_removed_just_before_the_claim_is_not_reached_by_the_attempt(acme, ledger, monkeypatch):
    import apps.runs.tasks as run_tasks

    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)
    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.1/32")
    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "done"}]
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Book.", script=script)

    claim = engine._run_claim
    removed = []

    def operator_removes_then_claim(run_id):
        if not removed:  # the operator's command, in another process, after the task loaded its tenant
            with schema_context("public"):
                call_command("tenant_http_networks", "acme", "--remove", "127.0.0.1/32")
            removed.append(True)
        return claim(run_id)

    monkeypatch.setattr(engine, "_run_claim", operator_removes_then_claim)
    run_tasks.run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)
    with schema_context("acme"):
        run = Run.objects.get(pk=run.pk)
    assert removed
    assert ledger.booked == [], f"an http tool reached 127.0.0.1 after its removal (run {run.status})"
