"""A `deny` rule `country = "IR"` against values an accent- and case-insensitive collation reads as
"IR": PostgreSQL's own ICU collation at strength 1 (`und-u-ks-level1`, nondeterministic; like MySQL 8's
default utf8mb4_0900_ai_ci) compares "IR" + U+0345 (COMBINING GREEK YPOGEGRAMMENI, an accent),
"I" + U+20DD (COMBINING ENCLOSING CIRCLE) + "R" and "IR" + U+0640 (ARABIC TATWEEL) equal to "IR";
so do the rules (docs/runs.md: such a value "is that text to the rules"), and the payment is not
booked. Every character that collation passes over, the rules' fold passes over too."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

RULE = """    - name: no-payment-to-sanctioned-country
      entity: vendor
      when: country = "IR"
      then: deny
      message: Vendors in sanctioned countries are not paid.
"""
DOMAIN = FINANCE.replace("  glossary:\n", RULE + "  glossary:\n", 1)
assert DOMAIN != FINANCE


def _tool(port: int) -> str:
    return f"""    - name: ledger
      type: http
      entity: vendor
      description: Book a payment in the ledger.
      method: POST
      url: http://127.0.0.1:{port}/entries/{{id}}
      hosts: ["127.0.0.1"]
      timeout_seconds: 5
"""


def _collation_equal(value: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE COLLATION IF NOT EXISTS pg_temp.review_ci_ai"
            " (provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
        )
        cursor.execute("SELECT %s = 'IR' COLLATE pg_temp.review_ci_ai", [value])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    "country", ["IR\u0345", "I\u20ddR", "IR\u0640"], ids=["ypogegrammeni", "enclosing-circle", "tatweel"]
)
def test_a_deny_rule_is_not_evaded_by_a_mark_a_collation_ignores(acme, ledger, loopback_allowed, country):
    assert _collation_equal(country)  # the premise: a real accent-insensitive comparison reads it as "IR"
    agent = deploy(acme, DOMAIN, agent_yaml(tools=_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "V-1", "country": country}}}, {"respond": "done"}]
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Pay it.", script=script)
    run = advance(run, "acme")
    with schema_context("acme"):
        step = Step.objects.filter(run=run, node="tool").first()
        run = Run.objects.get(pk=run.pk)
    assert step.status in ("denied", "error"), f"paid past the deny rule ({step.status}); booked {ledger.booked}"
    assert ledger.booked == []


def test_every_character_the_collation_passes_over_the_rules_pass_over(db):
    """Each code point that makes "IR" + it, or "I" + it + "R", equal to "IR" under the collation
    folds away in the rules' reading of a value (foundry/runtime/rules.py `_fold_value`)."""
    from foundry.runtime.rules import _fold_value

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE COLLATION IF NOT EXISTS pg_temp.review_ci_ai"
            " (provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
        )
        cursor.execute(
            "SELECT g FROM generate_series(1, 196607) g WHERE g NOT BETWEEN 55296 AND 57343"
            " AND ('IR' || chr(g)) = 'IR' COLLATE pg_temp.review_ci_ai"
        )
        ignored = [chr(row[0]) for row in cursor.fetchall()]
    assert len(ignored) > 1000  # the marks, at least
    missed = [f"U+{ord(c):04X}" for c in ignored if _fold_value(f"IR{c}") != "ir" or _fold_value(f"I{c}R") != "ir"]
    assert missed == []
