"""DIS business rules against tool arguments in the bracket or dot notation that common
query-string parsers read as a rule's field: `amount[]=25000`, `amount[0]=25000`,
`invoice[amount]=25000` (PHP's $_GET, Rails/Rack, Node's `qs`, Express's default). Like an
argument spelt with another case or a look-alike letter, such an argument is refused
(`tool_argument_invalid`: "the field is spelt 'amount'"), so a `require_approval` rule
(`amount > 10000`) cannot be stepped around (foundry/runtime/rules.py `RuleBook.record`)."""

import pytest
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy


def _get_tool(port: int) -> str:
    return f"""    - name: ledger
      type: http
      entity: invoice
      description: Look invoices up in the ledger.
      method: GET
      url: http://127.0.0.1:{port}/entries/{{id}}
      hosts: ["127.0.0.1"]
      timeout_seconds: 5
"""


@pytest.mark.parametrize("name", ["amount[]", "amount[0]", "invoice[amount]"])
def test_a_bracketed_spelling_of_a_rule_field_is_refused(acme, ledger, loopback_allowed, name):
    agent = deploy(acme, FINANCE, agent_yaml(tools=_get_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "INV-9", name: 25000}}}, {"respond": "done"}]
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Look it up.", script=script)
    run = advance(run, "acme")
    with schema_context("acme"):
        approvals = list(Approval.objects.filter(run=run).values_list("tool", flat=True))
        tool = Step.objects.filter(run=run, node="tool").first()
        run = Run.objects.get(pk=run.pk)
    assert (tool.status, tool.error) == ("error", "tool_argument_invalid"), tool.summary
    assert "spelt 'amount'" in tool.summary
    assert approvals == [] and ledger.booked == []
