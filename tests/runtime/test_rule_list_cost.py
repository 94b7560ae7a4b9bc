"""A tool call's list argument is checked against the rules' list comparisons in one look each
(`RuleBook.variants` holds a list as a set; found by a review). `tags:"t1"` scanned the whole
list for each comparison of each rule, in each of up to 64 spelling variants of the call, with
no bound on the product: a 31 KB domain and a 4,000-item list took ~4 s of worker CPU per call,
inside one step that no run timeout interrupts."""

import itertools
import time

import pytest

from foundry.manifests import validate
from foundry.runtime.rules import RuleBook


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Overrides the project-wide fixture: nothing here touches the database or the cache."""
    yield


def _domain(list_rules: int) -> str:
    # 64 spellings of one text (its letters' cases): the 64 variants review() checks each rule on.
    spellings = ["".join(p) for p in itertools.product(*[(c, c.upper()) for c in "abcdef"])]
    spelt = " OR ".join(f'code = "{s}"' for s in spellings)
    membership = " OR ".join(f'tags:"t{j}"' for j in range(200))  # MAX_TERMS comparisons
    rules = "\n".join(
        f"    - {{name: r{i}, entity: invoice, when: '{membership}', then: deny}}" for i in range(list_rules)
    )
    return f"""apiVersion: foundry/v1
kind: Domain
metadata: {{name: finance}}
spec:
  entities:
    invoice:
      fields:
        code: {{type: string}}
        tags: {{type: list, items: {{type: string}}}}
  rules:
    - {{name: spelt, entity: invoice, when: '{spelt}', then: warn}}
{rules}
"""


def test_reviewing_a_list_argument_against_list_rules_is_bounded():
    """The review of 4,000 values against a 31 KB domain of list rules finishes in well under a
    second, and still finds what the rules say."""
    result = validate(_domain(10), "finance.yaml")
    assert result.ok, [str(p) for p in result.problems]
    book = RuleBook(result.data)
    arguments = {"code": "abcdef", "tags": [f"x{i}" for i in range(4_000)]}
    started = time.process_time()
    verdict = book.review("invoice", arguments)
    took = time.process_time() - started
    assert took < 1.0, f"one tool call's rule review took {took:.1f} s of CPU"
    assert not verdict.denied and [r.name for r in verdict.warnings] == ["spelt"]
    denied = book.review("invoice", {**arguments, "tags": [*arguments["tags"], "t199"]})
    assert len(denied.denied) == 10  # every list rule holds `tags:"t199"`
