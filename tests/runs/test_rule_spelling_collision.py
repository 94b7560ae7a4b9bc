"""Two rules on one field whose texts fold alike (another case, an accent): a lenient server reads
a value as both, so each rule applies to it — the value a `deny` (or `require_approval`) rule
names, sent exactly as that rule writes it, is caught by it, whatever another rule spells alike."""

from tests.runs.conftest import FINANCE
from tests.runs.rule_calls import ruled_call

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


def _run(acme, ledger, arguments: dict):
    return ruled_call(acme, ledger, DOMAIN, {"ref": "P-1", **arguments}, key="ref")


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
