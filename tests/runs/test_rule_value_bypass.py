"""Tool-call values a lenient backend reads as the value a DIS rule compares with are that value
to the rules (foundry/runtime/rules.py): invisible format characters (zero-width space, soft
hyphen, word joiner, BOM) and accents are nothing to them, as to names (`name_fold`) and to
accent-insensitive collations (MySQL 8's default `utf8mb4_0900_ai_ci`). They slipped past a
`deny` rule; so did a time between two microseconds past a `require_approval` one.

Driven as real runs with the scripted provider: a POST http tool on the `vendor` entity books
into a real local service (tests/runs/conftest.py `Ledger`), whose received requests are counted.
"""

import pytest

from tests.runs.conftest import FINANCE
from tests.runs.rule_calls import ruled_call

EXTRA_RULES = """    - name: no-payment-to-sanctioned-country
      entity: vendor
      when: country = "IR"
      then: deny
      message: Vendors in sanctioned countries are not paid.
    - name: late-received-needs-approval
      entity: invoice
      when: received_at > "2026-01-31T00:00:00Z"
      then: require_approval
      message: Invoices received after January need a human approver.
"""

DOMAIN = FINANCE.replace("  glossary:\n", EXTRA_RULES + "  glossary:\n", 1)
assert DOMAIN != FINANCE


def _run(acme, ledger, entity: str, arguments: dict):
    return ruled_call(acme, ledger, DOMAIN, {"id": "V-1", **arguments}, entity=entity)


@pytest.mark.parametrize(
    "country",
    ["I\u200bR", "IR\u200b", "IR\u00ad", "\ufeffIR", "I\u2060R"],
    ids=["zero-width-space", "trailing-zero-width-space", "soft-hyphen", "bom", "word-joiner"],
)
def test_a_deny_rule_is_not_evaded_by_invisible_format_characters_in_the_value(acme, ledger, loopback_allowed, country):
    """`country = "IR"` (deny) must stop a payment whose country is "IR" with an invisible format
    character (Unicode Cf) in it: name_fold drops those from argument names for exactly this
    reason, and collations such as MySQL's default utf8mb4_0900_ai_ci compare "I\\u200bR" equal
    to "IR". It ran; values are folded as names are now."""
    _, step, _ = _run(acme, ledger, "vendor", {"country": country})
    assert step.status in ("denied", "error"), f"paid past the deny rule ({step.status}); booked {ledger.booked}"
    assert ledger.booked == []


@pytest.mark.parametrize("country", ["I\u0301R", "\u00cdR"], ids=["combining-acute", "precomposed-I-acute"])
def test_a_deny_rule_is_not_evaded_by_an_accent_on_the_value(acme, ledger, loopback_allowed, country):
    """`country = "IR"` (deny) must stop "ÍR" (I + U+0301, or U+00CD): MySQL 8's default collation
    utf8mb4_0900_ai_ci is accent-insensitive and reads it as "IR", and name_fold already drops
    combining marks from names for that reason. It ran."""
    _, step, _ = _run(acme, ledger, "vendor", {"country": country})
    assert step.status in ("denied", "error"), f"paid past the deny rule ({step.status}); booked {ledger.booked}"
    assert ledger.booked == []


def test_a_datetime_rule_is_not_evaded_by_sub_microsecond_digits(acme, ledger, loopback_allowed):
    """`received_at > "2026-01-31T00:00:00Z"` (require_approval): "2026-01-31T00:00:00.0000001Z" is
    an instant after it, but the argument was cut to the microsecond, equal to the threshold, and
    the call ran without approval. An argument between two microseconds is refused now."""
    _, step, approvals = _run(acme, ledger, "invoice", {"received_at": "2026-01-31T00:00:00.0000001Z"})
    assert (step.status, step.error, approvals) == ("error", "tool_argument_invalid", [])
    assert ledger.booked == []
