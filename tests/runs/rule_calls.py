"""One tool call against a domain's rules, driven as a real run with the scripted provider: a POST
http tool on an entity books into the local service (tests/runs/conftest.py `Ledger`), whose
received requests are counted."""

from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import advance, agent_yaml, deploy


def ledger_tool(port: int, entity: str = "vendor", key: str = "id") -> str:
    return f"""    - name: ledger
      type: http
      entity: {entity}
      description: Book a payment in the ledger.
      method: POST
      url: http://127.0.0.1:{port}/entries/{{{key}}}
      hosts: ["127.0.0.1"]
      timeout_seconds: 5
"""


def ruled_call(tenant, ledger, domain: str, arguments: dict, *, entity: str = "vendor", key: str = "id"):
    """(the run, its tool step, the tools it asked approval for) of one `ledger` call."""
    agent = deploy(tenant, domain, agent_yaml(tools=ledger_tool(ledger.port, entity, key)))
    script = [{"tool_call": {"tool": "ledger", "arguments": arguments}}, {"respond": "done"}]
    with schema_context(tenant.schema_name):
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        run = run_start(actor=owner, agent=agent, input="Pay it.", script=script)
    run = advance(run, tenant.schema_name)
    with schema_context(tenant.schema_name):
        approvals = list(Approval.objects.filter(run=run).values_list("tool", flat=True))
        step = Step.objects.filter(run=run, node="tool").first()
        run = Run.objects.get(pk=run.pk)
    return run, step, approvals
