"""Validating a domain costs in proportion to its size, not to rules times fields: each entity's
filter fields (one per field) are built once, not once per rule — a 350 KB domain of 6,000
fields and 2,800 rules, under the size limits, took over two minutes, and every publish path
(POST /api/v1/validate with a `read` token, the console, forge) validates what it is sent."""

import foundry.manifests.loader as loader
import foundry.manifests.validation as validation
from foundry.manifests import validate


def test_an_entitys_filter_fields_are_built_once_whatever_its_rules(monkeypatch):
    built = []
    real = validation.entity_filters

    def counted(entity):
        built.append(entity)
        return real(entity)

    monkeypatch.setattr(validation, "entity_filters", counted)
    fields = "\n".join(f"        f{i}: {{type: integer}}" for i in range(200))
    rules = "\n".join(f"    - {{name: r{i}, entity: e, when: 'f{i % 200} > 1', then: deny}}" for i in range(300))
    document = (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: d}\nspec:\n  entities:\n    e:\n"
        f"      fields:\n{fields}\n  rules:\n{rules}\n    - {{name: bad, entity: e, when: 'nope > 1', then: deny}}\n"
    )
    result = validate(document, "big.yaml")
    assert len(built) == 1
    assert [(p.code, p.line) for p in result.problems] == [("rule_unknown_field", 509)]


def test_the_source_is_split_into_lines_once_however_many_rule_problems_point_into_it(monkeypatch):
    """Each rule problem points at its word in the source: the lines are split once, not once per
    problem (a 1 MiB domain with 1,000 bad conditions took 12-27 s of CPU)."""
    splits = []
    real = loader.source_lines

    def counted(text):
        splits.append(len(text))
        return real(text)

    monkeypatch.setattr(loader, "source_lines", counted)
    rules = "\n".join(f"    - {{name: r{i}, entity: e, when: 'nope > {i}', then: deny}}" for i in range(200))
    document = (
        "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: d}\nspec:\n  entities:\n    e:\n"
        f"      fields:\n        f: {{type: integer}}\n  rules:\n{rules}\n"
    )
    result = validate(document, "big.yaml")
    assert [p.code for p in result.problems] == ["rule_unknown_field"] * 200
    assert [p.line for p in result.problems] == list(range(10, 210))
    assert splits.count(len(document)) == 1
