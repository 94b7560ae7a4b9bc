"""Lexing a dotted value is linear (found by a review): the filter lexer tries FUNCTION_OPEN
first at every token, and its name ran over the whole rest of `a.a.a.…` looking for a `(` at
each of its parts: a 4,096-character filter (the MAX_LENGTH) cost ~100x a plain one. A call's
name now has at most four parts. And a condition repeated by YAML aliases is compiled once per
validation and per rule book, not once per copy (filters over 256 characters are not kept)."""

import time

import pytest

from foundry.filtering.parser import parse
from foundry.manifests import validate
from foundry.runtime.rules import RuleBook


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Overrides the project-wide fixture: nothing here touches the database or the cache."""
    yield


def _parse_seconds(text: str) -> float:
    """The least CPU time of three parses of `text`."""
    times = []
    for _ in range(3):
        started = time.process_time()
        parse(text)
        times.append(time.process_time() - started)
    return min(times)


def test_parsing_a_long_dotted_value_is_linear():
    """Four times the parts take about four times as long, not sixteen (quadratic)."""
    short, long = ("s = " + ".".join(["a"] * parts) for parts in (510, 2040))
    ratio = _parse_seconds(long) / _parse_seconds(short)
    assert ratio < 8, f"a filter of 4x the parts took {ratio:.1f}x as long to parse"


def test_validating_a_small_domain_of_aliased_rules_is_quick():
    """A 4 KB domain of 30 aliased copies of one 4,083-character rule validates in well under a
    second (each copy was parsed afresh, each parse quadratic: seconds), and its rule book is
    built as quickly."""
    when = "s = " + ".".join(["a"] * 2040)  # past the 256-character compile cache
    document = (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: d}\nspec:\n  entities:\n    e:\n"
        "      fields: {s: {type: string}}\n  rules:\n"
        f"    - &r {{name: r, entity: e, when: '{when}', then: deny}}\n" + "    - *r\n" * 30
    )
    started = time.process_time()
    result = validate(document, "d.yaml")
    took = time.process_time() - started
    assert took < 0.5, f"validating a {len(document):,}-character domain took {took:.1f} s of CPU"
    started = time.process_time()
    RuleBook(result.data)
    took = time.process_time() - started
    assert took < 0.5, f"building the rule book of a {len(document):,}-character domain took {took:.1f} s of CPU"
