"""Field names of the pinned DIS that read alike: as dis_query's own arguments (`question`,
`filter`), or as another field of the entity."""

import json
from pathlib import Path

import pytest

from foundry.manifests import validate
from foundry.runtime.tools import Toolbox, ToolError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Pure runtime: nothing here touches the database or the cache."""
    yield


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("filter_", {"filter": "amount > 5"}),
        ("question_", {"question": "What is AP?"}),
    ],
)
def test_a_field_spelt_like_a_dis_query_argument_does_not_make_that_argument_unusable(field, arguments):
    """docs/manifests.md reserves `question` and `filter` for dis_query's own arguments
    (`dis_field_reserved`). The runtime's look-alike check (rules.read_as, docs/runs.md) reads an
    argument spelt like a field as that field, so a field `filter_` or `question_` would make it
    refuse dis_query's own argument on that entity: validation refuses such a field too (or, were
    it let through, the argument must still work)."""
    source = (EXAMPLES / "domains" / "finance.yaml").read_text()
    source = source.replace(
        "        tags: {type: list, items: {type: string}}\n",
        f"        tags: {{type: list, items: {{type: string}}}}\n        {field}: {{type: string}}\n",
    )
    checked = validate(source, "finance.yaml")
    if not checked.ok:  # fixed by refusing the field: then it must be for the reserved name
        assert "dis_field_reserved" in [p.code for p in checked.problems], [str(p) for p in checked.problems]
        return
    agent = validate((EXAMPLES / "agents" / "invoice-triage.yaml").read_text(), "invoice-triage.yaml").data
    toolbox = Toolbox(agent, checked.data)
    tool = toolbox.get("find_invoices")
    try:
        toolbox.review(tool, arguments)
        answer = json.loads(toolbox.run(tool, arguments, timeout=5))
    except ToolError as exc:
        pytest.fail(f"dis_query refused its own documented argument: {exc.code}: {exc.message}")
    assert answer["entity"] == "invoice"


@pytest.mark.parametrize("twin", ["amount_", "a_mount"])
def test_two_fields_of_an_entity_spelt_alike_are_refused(twin):
    """A lenient server reads `a_mount` as `amount`: were both fields, the runtime would take an
    argument for the second as written, and a rule on `amount > 10000` would never see it. The
    domain is refused at the second (`dis_field_lookalike`)."""
    source = (EXAMPLES / "domains" / "finance.yaml").read_text()
    twinned = source.replace(
        "        amount: {type: decimal, required: true}\n",
        f"        amount: {{type: decimal, required: true}}\n        {twin}: {{type: decimal}}\n",
        1,
    )
    assert twinned != source
    checked = validate(twinned, "finance.yaml")
    assert [(p.code, p.path.rsplit("/", 1)[-1]) for p in checked.problems] == [("dis_field_lookalike", twin)], [
        str(p) for p in checked.problems
    ]
