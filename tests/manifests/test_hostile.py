"""Hostile documents are refused quickly, with their problem reported and nothing else happening:
no exception, no partial data, no construction of anything but plain values."""

import time

import pytest

from foundry.manifests import loader, validate
from foundry.manifests.loader import MAX_BYTES, MAX_NODES
from tests.manifests.conftest import FINANCE
from tests.manifests.test_loader import billion_laughs

# Seconds. Each of these takes about a millisecond; an unbounded expansion takes seconds to
# minutes. The margin is for a loaded 2-core CI machine (59 ms was seen there at 0.050).
LIMIT = 0.250


def _laughing_keys() -> str:
    """A billion laughs built of mappings, the aliases used as values of many keys."""
    lines = ["a: &a {" + ", ".join(f"k{i}: lol" for i in range(10)) + "}"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} {{" + ", ".join(f"k{i}: *{previous}" for i in range(10)) + "}")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion laughs": (billion_laughs(9), "yaml_alias_expansion"),
    "billion laughs of mappings": (_laughing_keys(), "yaml_alias_expansion"),
    "a billion laughs of 16 levels": (billion_laughs(16), "yaml_alias_expansion"),
    "recursive alias": ("a: &x [*x]\n", "yaml_recursive_alias"),
    "deep flow nesting": ("a: " + "[" * 100_000, "yaml_syntax"),
    "deep block nesting": ("a:\n" + "- " * 100_000 + "x\n", "yaml_syntax"),
    "nesting just too deep": ("a: " + "[" * 65 + "]" * 65, "yaml_too_deep"),
    "huge scalar": ("a: " + "x" * (MAX_BYTES - 10) + "\n", "yaml_scalar_too_long"),
    "huge document": ("a: " + "x" * MAX_BYTES, "yaml_too_large"),
    "python object": ("a: !!python/object/apply:os.system ['echo pwned']\n", "yaml_tag_forbidden"),
    "python module": ("a: !!python/module:os\n", "yaml_tag_forbidden"),
    "invalid utf-8": (b"a: " + b"\xff" * (MAX_BYTES - 10), "encoding_invalid"),
    "control characters": ("a: " + "\x00" * 1000, "yaml_syntax"),
    "a thousand duplicate keys": ("a: 1\n" * 1000, "yaml_duplicate_key"),
    "a rule of too many terms": (
        FINANCE.replace("when: amount > 10000", "when: " + " AND ".join(["amount > 1"] * 260)),
        "rule_expression_invalid",
    ),
    "a rule nested too deeply": (
        FINANCE.replace("when: amount > 10000", "when: " + "(" * 4000 + "amount > 1"),
        "rule_expression_invalid",
    ),
}


@pytest.mark.parametrize(("source", "code"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_document_is_refused_quickly(source, code):
    timings = []
    for _ in range(3):  # the best of three, so a busy machine does not fail the test
        started = time.perf_counter()
        result = validate(source, "hostile.yaml")
        timings.append(time.perf_counter() - started)
    assert code in {p.code for p in result.problems}
    assert all(p.line >= 1 and p.column >= 1 and p.file == "hostile.yaml" for p in result.problems)
    assert min(timings) < LIMIT, f"{min(timings) * 1000:.1f} ms"


@pytest.mark.parametrize("name", [n for n in HOSTILE if HOSTILE[n][1].startswith(("yaml_", "encoding_"))])
def test_an_unreadable_document_gives_no_partial_data(name):
    result = validate(HOSTILE[name][0])
    assert result.loaded is None and result.data is None and result.kind is None and not result.ok


def test_the_largest_flat_document_is_refused_after_reading_no_more_than_the_limit(monkeypatch):
    source = "[" + ",".join(["1"] * (MAX_BYTES // 2 - 1)) + "]"  # half a million values in one mebibyte
    resolved = []  # every value the loader composed (counted, not timed: exact on any machine)
    real = loader._Loader.descend_resolver
    monkeypatch.setattr(loader._Loader, "descend_resolver", lambda self, *a: resolved.append(1) or real(self, *a))
    result = validate(source)
    assert [p.code for p in result.problems] == ["yaml_too_large"]
    assert result.problems[0].message == f"The document has more than {MAX_NODES} values."
    assert len(resolved) == MAX_NODES + 1  # composing stopped at the limit, not after 500,000 values
