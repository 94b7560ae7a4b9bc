"""A rule naming an unknown field gets an error that names at most MAX_FIELDS_SHOWN of the
entity's filterable fields, built once per entity (foundry/filtering/compiler.py). Every such
error listed them all, sorted and formatted afresh for each rule, and validation checks rules
whatever the schema's caps say: the cost was fields x rules, ~29 s of CPU, ~530 MiB and a 16 MiB
answer for a 350 KB domain in POST /api/v1/validate, a read-scope call (found by a review).
"""

import time

import pytest

from foundry.manifests import validate


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Overrides the project-wide fixture: nothing here touches the database or the cache."""
    yield


def _domain(fields: int, rules: int) -> str:
    field_lines = "\n".join(f"        f{i}: {{type: integer}}" for i in range(fields))
    rule_lines = "\n".join("    - {entity: e, when: 'x > 1'}" for _ in range(rules))
    return (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: d}\nspec:\n  entities:\n    e:\n"
        f"      fields:\n{field_lines}\n  rules:\n{rule_lines}\n"
    )


def test_a_rule_naming_an_unknown_field_costs_no_more_than_its_own_size():
    """The message names the unknown field and a bounded sample of the fields, so validating
    costs in proportion to the document (each of 1,500 messages held all 1,500 fields, ~25 KB)."""
    document = _domain(1_500, 1_500)
    started = time.process_time()
    result = validate(document, "d.yaml")
    took = time.process_time() - started
    unknown = [p for p in result.problems if p.code == "rule_unknown_field"]
    assert unknown, [p.code for p in result.problems[:5]]
    longest = max(len(p.message) for p in unknown)
    assert longest <= 2_000, f"an unknown-field message is {longest:,} characters long"
    assert took < 1.0, f"validating a {len(document):,}-character domain took {took:.1f} s of CPU"


def test_validate_api_for_a_viewer_answers_a_small_domain_quickly(acme):
    """POST /api/v1/validate with a viewer's read token: the same 52 KB domain is answered in an
    answer proportionate to it (at most 500 problems of short messages), not megabytes."""
    import json

    from tests.api.conftest import api, issue

    viewer = api(acme, issue(acme, role="viewer", scopes=("read",)))
    body = json.dumps({"content": _domain(1_500, 1_500)})
    started = time.process_time()
    response = viewer.post("/api/v1/validate", body, content_type="application/json")
    took = time.process_time() - started
    assert response.status_code == 200 and response.json()["valid"] is False
    answer = len(response.content)
    assert answer < 1024 * 1024, f"a {len(body):,}-byte request got a {answer:,}-byte answer"
    assert took < 5.0, f"the request took {took:.1f} s of CPU"
