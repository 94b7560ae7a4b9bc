"""A DIS rule's wildcard (`vendor = "*a*c"`) is matched in Python — the rule's check of every tool
call of a run — in time linear in the argument: no backtracking regex, whose `.*a.*a.*…c`
takes exponential time on text that almost matches (a model's argument, perhaps prompt-injected,
would hold the run's worker past any timeout). Matching agrees with the regex PostgreSQL runs."""

import random
import re
import subprocess
import sys

import pytest

from foundry.filtering.compiler import _glob_match
from foundry.manifests import validate

_DOMAIN = """apiVersion: foundry/v1
kind: Domain
metadata: {name: finance}
spec:
  entities:
    invoice:
      fields:
        vendor: {type: string}
  rules:
    - name: odd-vendor
      entity: invoice
      when: vendor = "%s"
      then: warn
"""
_PATTERN = "*a" * 16 + "*c"

_CHILD = """
import time
from foundry.manifests import validate
from foundry.runtime.rules import RuleBook
result = validate(%r, "finance.yaml")
book = RuleBook(result.data)
started = time.monotonic()
book.review("invoice", {"vendor": "a" * 64})
print(time.monotonic() - started)
"""


def test_reviewing_a_tool_call_against_a_wildcard_rule_takes_bounded_time():
    source = _DOMAIN % _PATTERN
    assert validate(source, "finance.yaml").ok  # publishing accepts the rule
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD % source], capture_output=True, text=True, timeout=20, check=False
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(
            "RuleBook.review of one 64-character argument against a 17-star wildcard rule ran past 20 s "
            "(catastrophic backtracking in the rule's Python predicate)"
        ) from None
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < 1.0


@pytest.mark.parametrize("seed", range(5))
def test_wildcards_match_what_the_regex_of_the_same_pattern_matches(seed):
    chance = random.Random(seed)
    for _ in range(2000):
        pattern = "".join(chance.choice("ab*") for _ in range(chance.randint(1, 7)))
        if "*" not in pattern:
            continue
        pieces = pattern.split("*")
        value = "".join(chance.choice("ab") for _ in range(chance.randint(0, 8)))
        regex = re.compile(".*".join(re.escape(piece) for piece in pieces), re.DOTALL)
        assert _glob_match(tuple(pieces), value) == (regex.fullmatch(value) is not None), (pattern, value)
