"""A `deny` rule `country = "IR"` against values an accent- and case-insensitive collation reads as
"IR": PostgreSQL's own ICU collation at strength 1 (`und-u-ks-level1`, nondeterministic; like MySQL 8's
default utf8mb4_0900_ai_ci) compares "IR" + U+0345 (COMBINING GREEK YPOGEGRAMMENI, an accent),
"I" + U+20DD (COMBINING ENCLOSING CIRCLE) + "R" and "IR" + U+0640 (ARABIC TATWEEL) equal to "IR";
so do the rules (docs/runs.md: such a value "is that text to the rules"), and the payment is not
booked. Every character that collation passes over, the rules' fold passes over too; and no
other but invisible ones (nor the vowel signs of Indic scripts, which weigh as letters: "कमल" is
not "कमला", and a `!=` rule naming one catches the other)."""

import unicodedata

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


NOT_RULE = """    - name: only-the-contracted-vendor
      entity: vendor
      when: name != "कमला"
      then: deny
      message: Only the contracted vendor is paid.
"""
NOT_DOMAIN = FINANCE.replace("  glossary:\n", NOT_RULE + "  glossary:\n", 1)


def test_a_name_differing_by_a_spacing_vowel_sign_is_another_name_to_the_rules(acme, ledger, loopback_allowed):
    other = "कमल"  # the same letters without U+093E DEVANAGARI VOWEL SIGN AA (category Mc)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s = 'कमला' COLLATE {_collated(cursor)}", [other])
        assert cursor.fetchone()[0] is False  # the premise: the collation reads two different names
    _, step, _ = ruled_call(acme, ledger, NOT_DOMAIN, {"id": "V-9", "name": other})
    assert step.status in ("denied", "error"), f"paid past the deny rule ({step.status}); booked {ledger.booked}"
    assert ledger.booked == []


def test_the_rules_pass_over_what_the_collation_does_and_nothing_else_but_invisible_characters(db):
    """Each code point that makes "IR" + it, or "I" + it + "R", equal to "IR" under the collation
    folds away in the rules' reading of a value (foundry/runtime/rules.py `_fold_value`); each
    that folds away between two letters is one the collation passes over, or an invisible format
    or control character (dropped on purpose: it is not seen)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g FROM generate_series(1, 196607) g WHERE g NOT BETWEEN 55296 AND 57343"
            f" AND ('IR' || chr(g)) = 'IR' COLLATE {_collated(cursor)}"
        )
        ignored = [chr(row[0]) for row in cursor.fetchall()]
    assert len(ignored) > 1000  # the marks, at least
    missed = [f"U+{ord(c):04X}" for c in ignored if _fold_value(f"IR{c}") != "ir" or _fold_value(f"I{c}R") != "ir"]
    assert missed == []
    passed = {ord(c) for c in ignored}
    dropped = [
        f"U+{cp:04X}"
        for cp in range(1, 196608)
        if not 0xD800 <= cp <= 0xDFFF
        and cp not in passed
        and unicodedata.category(chr(cp)) not in ("Cf", "Cc")
        and _fold_value(f"I{chr(cp)}R") == "ir"
    ]
    assert dropped == []
