"""Rule books are compiled once per process for what a DIS says (foundry/runtime/rules.py
`rule_book`), never shared by name: workspaces' domains of one name and version keep their own rules."""

import copy

import yaml

from foundry.runtime import rules
from foundry.runtime.rules import rule_book
from tests.runs.conftest import FINANCE
from tests.runs.rule_calls import ruled_call

DENY = """    - name: no-payment-to-blocked-co
      entity: vendor
      when: name = "Blocked Co"
      then: deny
      message: Blocked Co is blocked.
"""
DENYING = FINANCE.replace("  glossary:\n", DENY + "  glossary:\n", 1)
assert DENYING != FINANCE


def test_a_domain_is_compiled_once_for_what_it_says(monkeypatch):
    compiled = []
    book = rules.RuleBook

    def counted(domain):
        compiled.append(domain)
        return book(domain)

    monkeypatch.setattr(rules, "RuleBook", counted)
    plain, denying = yaml.safe_load(FINANCE), yaml.safe_load(DENYING)
    rules._books.clear()
    first = rule_book(plain)
    assert rule_book(copy.deepcopy(plain)) is first and len(compiled) == 1
    assert rule_book(denying) is not first and len(compiled) == 2
    renamed = copy.deepcopy(plain) | {"metadata": {"name": "other"}}
    assert rule_book(renamed) is first, "a name is not what the rules say"


def test_the_cache_keeps_its_bounds(monkeypatch):
    monkeypatch.setattr(rules, "MAX_BOOKS", 3)
    rules._books.clear()
    for i in range(5):
        rule_book(yaml.safe_load(DENYING.replace("Blocked Co", f"Blocked {i}")))
    assert len(rules._books) == 3
    monkeypatch.setattr(rules, "MAX_BOOKS_SOURCE", 1)
    rule_book(yaml.safe_load(FINANCE))
    assert len(rules._books) == 1  # one larger than the bound stays until the next


def test_two_workspaces_domains_of_one_name_and_version_keep_their_own_rules(acme, globex, ledger, loopback_allowed):
    rules._books.clear()
    _, step, _ = ruled_call(globex, ledger, FINANCE, {"ref": "P-1", "name": "Blocked Co"}, key="ref")
    assert step.status == "ok" and len(ledger.booked) == 1
    _, step, _ = ruled_call(acme, ledger, DENYING, {"ref": "P-2", "name": "Blocked Co"}, key="ref")
    assert step.status == "denied", (step.status, step.summary)
    _, step, _ = ruled_call(globex, ledger, FINANCE, {"ref": "P-3", "name": "Blocked Co"}, key="ref")
    assert step.status == "ok" and len(ledger.booked) == 2
