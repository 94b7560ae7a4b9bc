"""A `deny` rule `country = "IR"` against values an accent- and case-insensitive collation reads as
"IR": PostgreSQL's own ICU collation at strength 1 (`und-u-ks-level1`, nondeterministic; like MySQL 8's
default utf8mb4_0900_ai_ci) compares "IR" + U+0345 (COMBINING GREEK YPOGEGRAMMENI, an accent),
"I" + U+20DD (COMBINING ENCLOSING CIRCLE) + "R" and "IR" + U+0640 (ARABIC TATWEEL) equal to "IR";
so do the rules (docs/runs.md: such a value "is that text to the rules"), and the payment is not
booked. Every character that collation passes over, the rules' fold passes over too."""

import pytest
from django.db import connection

from foundry.runtime.rules import _fold_value
from tests.runs.conftest import FINANCE
from tests.runs.rule_calls import ruled_call

RULE = """    - name: no-payment-to-sanctioned-country
      entity: vendor
      when: country = "IR"
      then: deny
      message: Vendors in sanctioned countries are not paid.
"""
DOMAIN = FINANCE.replace("  glossary:\n", RULE + "  glossary:\n", 1)
assert DOMAIN != FINANCE


def _collated(cursor) -> str:
    """The comparison's collation: ICU at strength 1, case- and accent-insensitive (this session's)."""
    cursor.execute(
        "CREATE COLLATION IF NOT EXISTS pg_temp.ci_ai"
        " (provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
    )
    return "pg_temp.ci_ai"


@pytest.mark.parametrize(
    "country", ["IR\u0345", "I\u20ddR", "IR\u0640"], ids=["ypogegrammeni", "enclosing-circle", "tatweel"]
)
def test_a_deny_rule_is_not_evaded_by_a_mark_a_collation_ignores(acme, ledger, loopback_allowed, country):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s = 'IR' COLLATE {_collated(cursor)}", [country])
        assert cursor.fetchone()[0]  # the premise: a real accent-insensitive comparison reads it as "IR"
    _, step, _ = ruled_call(acme, ledger, DOMAIN, {"id": "V-1", "country": country})
    assert step.status in ("denied", "error"), f"paid past the deny rule ({step.status}); booked {ledger.booked}"
    assert ledger.booked == []


def test_every_character_the_collation_passes_over_the_rules_pass_over(db):
    """Each code point that makes "IR" + it, or "I" + it + "R", equal to "IR" under the collation
    folds away in the rules' reading of a value (foundry/runtime/rules.py `_fold_value`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g FROM generate_series(1, 196607) g WHERE g NOT BETWEEN 55296 AND 57343"
            f" AND ('IR' || chr(g)) = 'IR' COLLATE {_collated(cursor)}"
        )
        ignored = [chr(row[0]) for row in cursor.fetchall()]
    assert len(ignored) > 1000  # the marks, at least
    missed = [f"U+{ord(c):04X}" for c in ignored if _fold_value(f"IR{c}") != "ir" or _fold_value(f"I{c}R") != "ir"]
    assert missed == []
