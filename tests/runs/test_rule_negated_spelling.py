"""A negated DIS rule (`!=`, NOT) is not escaped by a value that folds to the rule's text.

foundry/runtime/rules.py `RuleBook.variants` reads a text both as written (what a strict, case-
and accent-sensitive service stores) and as each spelling the rules give a text that folds alike
(what a lenient one reads). It used to replace the text by the rule's spelling (another case, an
invisible character, an accent), the safe reading for `=` and the unsafe one for `!=`: a payment
to `v-1` went past `id != "V-1"` (found by a review).
"""

import pytest

from tests.runs.conftest import FINANCE
from tests.runs.rule_calls import ruled_call

RULE = """    - name: only-the-contracted-vendor
      entity: vendor
      when: id != "V-1"
      then: deny
      message: Only vendor V-1 is paid by this agent.
"""
DOMAIN = FINANCE.replace("  glossary:\n", RULE + "  glossary:\n", 1)
assert DOMAIN != FINANCE

NOT_RULE = RULE.replace('when: id != "V-1"', 'when: NOT id = "V-1"')
NOT_DOMAIN = FINANCE.replace("  glossary:\n", NOT_RULE + "  glossary:\n", 1)


def test_control_the_contracted_vendor_is_paid_and_another_is_denied(acme, ledger, loopback_allowed):
    _, step, _ = ruled_call(acme, ledger, DOMAIN, {"ref": "P-1", "id": "V-2"}, key="ref")
    assert step.status == "denied"
    assert ledger.booked == []


@pytest.mark.parametrize("domain", [DOMAIN, NOT_DOMAIN], ids=["not-equal", "NOT"])
@pytest.mark.parametrize("vendor", ["v-1", "V-1\u200b", "V\u0301-1"], ids=["lowercase", "zero-width", "accent"])
def test_a_negated_deny_rule_is_not_escaped_by_a_lookalike_of_its_text(acme, ledger, loopback_allowed, domain, vendor):
    """`id != "V-1"` (deny: only vendor V-1 may be paid). The model sends id "v-1" (or "V-1" with a
    zero-width space, or an accent): a case/accent-sensitive ledger would book a payment to a
    vendor that is NOT V-1, and the rule did not fire when the rules looked only at the value folded
    to "V-1". The value as written is checked too (any reading that a rule matches applies), so
    the call is denied (or refused) and nothing is booked."""
    _, step, _ = ruled_call(acme, ledger, domain, {"ref": "P-1", "id": vendor}, key="ref")
    assert step.status in ("denied", "error"), (
        f'a payment to {vendor!r} went past `id != "V-1"` ({step.status}); booked {ledger.booked}'
    )
    assert ledger.booked == []
