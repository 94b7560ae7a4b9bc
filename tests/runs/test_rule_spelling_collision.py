"""Two rules on one field whose texts fold alike (another case, an accent): a lenient server reads
a value as both, so each rule applies to it — the value a `deny` (or `require_approval`) rule
names, sent exactly as that rule writes it, is caught by it, whatever another rule spells alike."""

from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

RULES = """    - name: no-payment-to-blocked-vendor
      entity: vendor
      when: name = "São Paulo Trading"
      then: deny
      message: This vendor is blocked.
    - name: namesake-vendor-warning
      entity: vendor
      when: name = "Sao Paulo Trading"
      then: warn
      message: Not to be confused with the blocked São Paulo Trading.
    - name: vendor-x1-needs-approval
      entity: vendor
      when: id = "acme-x1"
      then: require_approval
      message: Vendor acme-x1 needs an approver.
    - name: vendor-capital-x1-warning
      entity: vendor
      when: id = "ACME-X1"
      then: warn
      message: ACME-X1 is another vendor.
"""

DOMAIN = FINANCE.replace("  glossary:\n", RULES + "  glossary:\n", 1)
assert DOMAIN != FINANCE


def _tool(port: int) -> str:
    return f"""    - name: ledger
      type: http
      entity: vendor
      description: Book a payment in the ledger.
      method: POST
      url: http://127.0.0.1:{port}/entries/{{ref}}
      hosts: ["127.0.0.1"]
      timeout_seconds: 5
"""


def _run(acme, ledger, arguments: dict):
    agent = deploy(acme, DOMAIN, agent_yaml(tools=_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"ref": "P-1", **arguments}}}, {"respond": "done"}]
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Pay it.", script=script)
    run = advance(run, "acme")
    with schema_context("acme"):
        approvals = list(Approval.objects.filter(run=run).values_list("tool", flat=True))
        step = Step.objects.filter(run=run, node="tool").first()
        run = Run.objects.get(pk=run.pk)
    return run, step, approvals


def test_the_exact_text_a_deny_rule_names_is_denied_when_another_rule_names_it_without_accent(
    acme, ledger, loopback_allowed
):
    _, step, _ = _run(acme, ledger, {"name": "São Paulo Trading"})
    assert step.status == "denied", f"paid past the deny rule ({step.status}, {step.summary}); booked {ledger.booked}"
    assert ledger.booked == []


def test_the_exact_text_an_approval_rule_names_waits_when_another_rule_names_it_in_capitals(
    acme, ledger, loopback_allowed
):
    run, _, approvals = _run(acme, ledger, {"id": "acme-x1"})
    assert run.status == "waiting_approval", f"ran without approval ({run.status}); booked {ledger.booked}"
    assert approvals == ["ledger"] and ledger.booked == []
