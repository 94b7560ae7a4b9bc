"""Problems are one line whatever a document names, and they point at the right line and column
whatever the file's line endings (LF, CRLF, or a lone CR as libyaml counts them)."""

import pytest

from foundry.manifests import validate
from tests.forge.conftest import FINANCE, forge

FORGED = """\
apiVersion: foundry/v1
kind: Domain
metadata: {name: finance}
spec:
  entities:
    "a\\rinvoice\\nother.yaml: ok (domain finance)\\n1 file valid.":
      fields:
        id: {type: reference, entity: ghost}
"""


def test_a_problem_message_is_one_line_whatever_names_the_document_holds():
    problems = validate(FORGED, "evil.yaml").problems
    assert problems
    for problem in problems:
        text = str(problem)
        assert not any(c in text for c in "\r\n\x1b"), text
    assert any("a\\rinvoice\\nother.yaml" in str(problem) for problem in problems)  # escaped, not dropped


def test_a_problem_message_shows_the_bidi_controls_a_document_names_escaped():
    """A U+202E in a name would make the rest of forge's line read reversed."""
    document = FORGED.replace("a\\rinvoice\\nother.yaml: ok (domain finance)\\n1 file valid.", "invoice\u202e")
    problems = validate(document, "evil.yaml").problems
    assert problems
    assert not any(
        set(str(problem)) & {*"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"} for problem in problems
    )
    assert any("invoice\\u202e" in str(problem) for problem in problems)


def test_forge_validate_output_cannot_be_forged_by_a_document(tmp_path):
    (tmp_path / "evil.yaml").write_text(FORGED)
    ran = forge("validate", "evil.yaml", cwd=tmp_path)
    assert ran.code == 1
    *problem_lines, summary = ran.out.splitlines()
    assert summary.startswith("2 problems"), ran.out
    assert all(line.startswith("evil.yaml:") for line in problem_lines), ran.out


CR_BASE = "apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: finance}\nspec:\n  x: ab\x01c\n"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_an_unacceptable_character_is_reported_on_its_line_whatever_the_line_endings(ending):
    problems = validate(CR_BASE.replace("\n", ending), "f.yaml").problems
    assert [(p.code, p.line, p.column) for p in problems] == [("yaml_syntax", 5, 8)]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_rule_problem_points_at_the_word_whatever_the_line_endings(ending):
    source = FINANCE.replace("amount > 10000", "amount > ghost").replace("\n", ending)
    problems = validate(source, "f.yaml").problems
    assert [(p.code, p.line, p.column) for p in problems] == [("rule_invalid_value", 16, 22)]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_bytes_that_are_no_utf8_are_reported_on_their_line_whatever_the_line_endings(ending):
    source = b"apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: fin\xffance}\n".replace(b"\n", ending)
    problems = validate(source, "f.yaml").problems
    assert [(p.code, p.line) for p in problems] == [("encoding_invalid", 3)]
