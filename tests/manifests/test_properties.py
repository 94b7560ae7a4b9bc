"""Property tests: whatever it is given, validate() returns (never raises), and every problem it
reports has a stable code and a real position."""

import copy
import os
import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundry.manifests import Validated, validate
from tests.manifests.test_validation import AGENT, DOMAIN, resolver

SETTINGS = settings(
    max_examples=int(os.environ.get("FOUNDRY_HYPOTHESIS_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CODE = re.compile(r"^[a-z][a-z0-9_]*$")

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # infinities and NaN included: they must be refused, not crash anything
    | st.text(max_size=20)
    | st.sampled_from(["invoice", "vendor", "amount > 1", "https://x.example.com/", "*.example.com", "reference"])
)
_keys = st.text(max_size=12) | st.sampled_from(
    ["name", "type", "entity", "fields", "from", "to", "via", "when", "tool", "url", "hosts", "items", "values"]
)
json_like = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4), max_leaves=12
)


def _dump(data) -> str:
    """yaml.safe_dump, done by libyaml (the same safe dumper, faster)."""
    return yaml.dump(data, Dumper=yaml.CSafeDumper)


def _check(result: Validated, text: str | None = None) -> None:
    assert isinstance(result, Validated)
    assert result.ok == (not result.problems)
    if result.ok:
        assert result.kind in ("domain", "agent") and isinstance(result.data, dict)
    for problem in result.problems:
        assert CODE.match(problem.code), problem
        assert problem.message and problem.line >= 1 and problem.column >= 1, problem
        if text is not None:  # safe_dump breaks lines with "\n" only
            assert problem.line <= text.count("\n") + 1, problem


@SETTINGS
@given(json_like)
def test_any_json_like_document_gets_problems_not_exceptions(data):
    text = _dump(data)
    _check(validate(text, domains=resolver), text)


@SETTINGS
@given(st.sampled_from(["Domain", "Agent"]), json_like, json_like)
def test_any_content_under_a_known_kind_gets_problems_not_exceptions(kind, metadata, spec):
    text = _dump({"apiVersion": "foundry/v1", "kind": kind, "metadata": metadata, "spec": spec})
    _check(validate(text, domains=resolver), text)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*path, i))


@SETTINGS
@given(st.sampled_from([DOMAIN, AGENT]), st.data())
def test_a_valid_document_with_any_part_replaced_gets_problems_not_exceptions(source, data):
    document = copy.deepcopy(validate(source).data)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([p for p in _paths(document) if p]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = data.draw(json_like)
    text = _dump(document)
    _check(validate(text, domains=resolver), text)


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_gets_problems_not_exceptions(text):
    _check(validate(text))


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_get_problems_not_exceptions(data):
    _check(validate(data))


@SETTINGS
@given(
    st.lists(
        st.sampled_from(
            ["a:", " b", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "!!str ", "\n", "  ", "'", '"', "? ", "<<: ", "#"]
        ),
        max_size=40,
    )
)
def test_any_jumble_of_yaml_punctuation_gets_problems_not_exceptions(pieces):
    _check(validate("".join(pieces)))
