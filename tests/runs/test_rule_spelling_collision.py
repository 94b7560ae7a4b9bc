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


def test_a_call_whose_texts_the_rules_spell_in_too_many_ways_is_refused_and_books_nothing(
    acme, ledger, loopback_allowed
):
    """Each choice of spellings is one record to check: 9 of the vendor's id times 8 of its name
    is more than MAX_SPELLING_VARIANTS (64), so the call is refused, not checked in part."""
    ids = ["acme-x1", "ACME-X1", "Acme-x1", "aCme-x1", "acMe-x1", "acmE-x1", "acme-X1", "ACme-x1", "AcMe-x1"]
    names = ["São Paulo Trading", "Sao Paulo Trading", "SÃO PAULO TRADING", "SAO PAULO TRADING",
             "são paulo trading", "sao paulo trading", "São paulo trading", "Sao paulo trading"]  # fmt: skip
    rules = "".join(
        f"""    - name: {field}-spelling-{i}
      entity: vendor
      when: {field} = "{text}"
      then: warn
      message: Spelling {i}.
"""
        for field, texts in (("id", ids), ("name", names))
        for i, text in enumerate(texts)
    )
    domain = FINANCE.replace("  glossary:\n", rules + "  glossary:\n", 1)
    _, step, _ = ruled_call(
        acme, ledger, domain, {"ref": "P-1", "id": "acme-x1", "name": "Sao Paulo Trading"}, key="ref"
    )
    assert step.status != "succeeded" and "spell their texts in too many ways" in step.summary, (
        step.status,
        step.summary,
    )
    assert ledger.booked == []
