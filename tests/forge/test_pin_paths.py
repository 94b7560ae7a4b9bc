"""forge test: an agent's domain pin names a file next to the manifest only when it is a
domain's name (`pin_of`, `domain_near` in foundry/forge/documents.py). A `../` or absolute name
reads no file outside the project, and a name too long for a file is no OSError: the manifest's
own problem (schema_pattern on /spec/domain/name) is what the user sees, exit 1.
"""

from tests.forge.conftest import TRIAGE, forge

# The project's triage agent (conftest.TRIAGE) without its tools, its domain pin a placeholder.
AGENT = TRIAGE.split("  tools:")[0].replace("    name: finance\n", "    name: {pin}\n")
assert "{pin}" in AGENT


def _project(tmp_path, pin: str):
    project = tmp_path / "project"
    (project / "agents").mkdir(parents=True)
    (project / "domains").mkdir()
    (project / "agents/triage.yaml").write_text(AGENT.format(pin=pin))
    return project


def test_pin_with_dot_dot_reads_a_file_outside_the_project(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    # Any YAML file outside the project: its problems are printed as if it were the domain.
    (outside / "secret.yaml").write_text("db_password: hunter2\nother_setting: 1\n")
    project = _project(tmp_path, "../../outside/secret")
    ran = forge("test", "agents/triage.yaml", cwd=project)
    assert "secret.yaml" not in ran.out and "db_password" not in ran.out, ran.out  # the outside file unread
    assert ran.code == 1, ran.out + ran.err
    assert "agents/triage.yaml:8:11: schema_pattern" in ran.out, ran.out


def test_absolute_pin_reads_a_file_anywhere(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.yaml").write_text("apiVersion: v1\nkind: Config\n")
    project = _project(tmp_path, str(outside / "config"))
    ran = forge("test", "agents/triage.yaml", cwd=project)
    assert "elsewhere/config.yaml:" not in ran.out, ran.out  # the problems of a file anywhere on disk
    assert ran.code == 1, ran.out + ran.err
    assert "agents/triage.yaml:8:11: schema_pattern" in ran.out, ran.out


def test_long_pin_name_is_a_problem_not_an_internal_error(tmp_path):
    project = _project(tmp_path, "a" * 300)
    ran = forge("test", "agents/triage.yaml", cwd=project)
    assert "internal_error" not in ran.err and "Unexpected OSError" not in ran.err, ran.err
    assert ran.code == 1, ran.out + ran.err
    assert "agents/triage.yaml:8:11: schema_pattern" in ran.out, ran.out
