"""forge's arguments: an empty path is no folder, and a usage error names its command."""

import pytest

from tests.forge.conftest import FINANCE, Stub, forge, stub_serving


@pytest.fixture
def recorder():
    with stub_serving(otherwise=(401, b'{"error": {"code": "unauthenticated", "message": "no"}}')) as port:
        yield f"http://127.0.0.1:{port}"


def test_validate_refuses_an_empty_path_instead_of_validating_the_working_folder(tmp_path):
    """`forge validate "$FILE"` with FILE unset: "" is no file (`ls ""` fails), though Path("") is "."."""
    (tmp_path / "finance.yaml").write_text(FINANCE)
    ran = forge("--json", "validate", "", cwd=tmp_path)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "error" in ran.json, ran.out


def test_deploy_with_an_empty_path_sends_nothing(tmp_path, recorder):
    """`forge deploy "$DOCS"` with DOCS unset publishes nothing (not every *.yaml of the working folder)."""
    (tmp_path / "finance.yaml").write_text(FINANCE)
    ran = forge("deploy", "", cwd=tmp_path, env={"FOUNDRY_URL": recorder, "FOUNDRY_TOKEN": "af_test"})
    assert Stub.seen == [], Stub.seen
    assert ran.code == 2, (ran.code, ran.out, ran.err)


@pytest.mark.parametrize("args", [("validate", "x.yaml", "--url"), ("pull", "x@1", "-o")], ids=["url", "output"])
def test_an_option_missing_its_value_prints_the_usage_line_and_the_help_hint(tmp_path, args):
    """docs/forge.md: a bad argument prints the usage line, a hint to --help and the error."""
    ran = forge(*args, cwd=tmp_path)
    assert ran.code == 2
    assert "Usage: forge" in ran.err and "--help" in ran.err, ran.err
