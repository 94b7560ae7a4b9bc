"""A problem in a rule's `when` is reported at the offending name's column when the expression is
written on one line as it reads, and at the start of the expression when it is folded over
lines or holds escapes (an offset into the parsed text names no column of the source then) —
never at a column past the end of a line or short of the mistake."""

from foundry.manifests import validate

DOMAIN = """apiVersion: foundry/v1
kind: Domain
metadata: {name: finance}
spec:
  entities:
    invoice:
      fields: {amount: {type: decimal}, status: {type: string}}
  rules:
    - name: folded
      entity: invoice
      when: amount > 10000
        AND bogus = 1
      then: deny
    - name: escaped
      entity: invoice
      when: "status = \\"x\\" AND nope = 1"
      then: deny
"""


def _where(word: str) -> tuple[int, int]:
    for number, line in enumerate(DOMAIN.splitlines(), start=1):
        if word in line:
            return number, line.index(word) + 1
    raise AssertionError(word)


def _problem(field: str):
    result = validate(DOMAIN, "finance.yaml")
    (problem,) = [p for p in result.problems if p.code == "rule_unknown_field" and repr(field) in p.message]
    return problem


def test_a_folded_plain_scalar_is_placed_at_its_start():
    problem = _problem("bogus")
    assert (problem.line, problem.column) == _where("amount > 10000")


def test_an_escaped_quoted_scalar_is_placed_at_its_start():
    problem = _problem("nope")
    line, column = _where('"status = ')
    assert (problem.line, problem.column) == (line, column)


def test_a_one_line_expression_points_at_the_unknown_field():
    source = DOMAIN.replace('"status = \\"x\\" AND nope = 1"', 'status = "x" AND nope = 1')
    assert 'when: status = "x" AND nope = 1' in source
    result = validate(source, "finance.yaml")
    (problem,) = [p for p in result.problems if p.code == "rule_unknown_field" and "'nope'" in p.message]
    line = next(n for n, text in enumerate(source.splitlines(), start=1) if "nope" in text)
    assert (problem.line, problem.column) == (line, source.splitlines()[line - 1].index("nope") + 1)
