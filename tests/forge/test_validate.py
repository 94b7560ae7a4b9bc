from tests.forge.conftest import FINANCE, TRIAGE, example_files, forge

BROKEN = """\
apiVersion: foundry/v1
kind: Agent
metadata:
  name: broken
  project: demo
spec:
  domain: {name: finance, version: 1}
  model: {provider: gpt, name: x}
  instructions: Do things.
  tools:
    - {name: lookup, type: dis_query, entity: ghost, description: a}
    - {name: lookup, type: dis_query, entity: invoice, description: b}
  approvals:
    tools: [missing]
"""
NOT_CHECKED = "Offline, an agent's pinned domain version is not checked: the domain file of that name is used."


def test_it_accepts_the_examples():
    ran = forge("validate", "examples/")
    assert ran.code == 0, ran.out
    files = example_files()
    assert [line.split(": ok (")[0] for line in ran.lines[:-1]] == files
    assert ran.lines[-1] == f"{len(files)} files valid."
    assert ran.err.count("pinned domain version is not checked") == 1  # said once, however many agents


def test_it_reports_every_problem_with_file_line_column_and_code(workspace):
    (workspace / "broken.yaml").write_text(BROKEN)
    ran = forge("validate", "broken.yaml", "domains/finance.yaml", cwd=workspace)
    assert ran.code == 1
    assert ran.lines == [
        "broken.yaml:8:21: provider_unknown: Unknown provider 'gpt'; one of scripted, openai, anthropic.",
        "broken.yaml:11:47: dis_unknown_entity: The pinned domain has no entity 'ghost'.",
        "broken.yaml:12:14: tool_duplicate_name: Two tools are named 'lookup'.",
        "broken.yaml:14:13: approval_unknown_tool: No tool named 'missing' to require approval for.",
        "domains/finance.yaml: ok (domain finance)",
        "4 problems in 1 of 2 files.",
    ]


def test_it_reports_a_yaml_syntax_error_where_it_is(tmp_path):
    (tmp_path / "syntax.yaml").write_text("kind: Agent\nspec: [1\n")
    ran = forge("validate", "syntax.yaml", cwd=tmp_path)
    assert ran.code == 1
    assert ran.lines[0].startswith("syntax.yaml:3:1: yaml_syntax: ")


def test_it_says_when_the_pinned_domain_is_not_among_the_files(workspace):
    ran = forge("validate", "agents/triage.yaml", cwd=workspace)
    assert (ran.code, ran.lines) == (0, ["agents/triage.yaml: ok (agent triage)", "1 file valid."])
    assert ran.err == (
        "note: agents/triage.yaml: domain 'finance' is not among the files given, so the tools' entities were not"
        " checked (give its file too, or validate against a server with --url).\n"
    )


def test_it_refuses_the_same_document_twice(workspace):
    (workspace / "copy.yaml").write_text(FINANCE)
    ran = forge("validate", "domains/", "copy.yaml", cwd=workspace)
    assert ran.code == 1
    assert ran.lines == [
        "domains/finance.yaml: ok (domain finance)",
        "copy.yaml:4:9: duplicate_document: The domain 'finance' is also defined in domains/finance.yaml;"
        " give each document once.",
        "1 problem in 1 of 2 files.",
    ]


def test_a_missing_file_is_a_usage_error_naming_it():
    ran = forge("validate", "examples/", "nowhere/missing.yaml")
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err == "forge: error: Cannot read nowhere/missing.yaml: No such file or directory.\n"


def test_a_folder_without_documents_is_a_usage_error(tmp_path):
    ran = forge("validate", str(tmp_path))
    assert ran.code == 2
    assert ran.err == f"forge: error: {tmp_path}: no *.yaml or *.yml files in this folder.\n"


def test_no_path_is_a_usage_error():
    ran = forge("validate")
    assert ran.code == 2
    assert "Missing argument 'PATH...'" in ran.err


def test_it_answers_one_json_document(workspace):
    (workspace / "broken.yaml").write_text(BROKEN)
    ran = forge("validate", "--json", "broken.yaml", "domains/finance.yaml", cwd=workspace)
    assert ran.code == 1
    body = ran.json
    assert body["valid"] is False
    assert body["server"] is None
    assert [(f["file"], f["kind"], f["name"], f["valid"]) for f in body["files"]] == [
        ("broken.yaml", "agent", "broken", False),
        ("domains/finance.yaml", "domain", "finance", True),
    ]
    assert body["files"][0]["problems"][0] == {
        "code": "provider_unknown",
        "message": "Unknown provider 'gpt'; one of scripted, openai, anthropic.",
        "file": "broken.yaml",
        "line": 8,
        "column": 21,
        "path": "/spec/model/provider",
    }
    assert body["notes"] == [NOT_CHECKED]
    assert ran.err == ""


def test_json_errors_are_json_too():
    ran = forge("--json", "validate", "missing.yaml")
    assert ran.code == 2
    assert ran.json == {
        "error": {"code": "file_unreadable", "message": "Cannot read missing.yaml: No such file or directory."}
    }


def test_with_url_it_validates_against_the_published_domains(server, tmp_path):
    server.publish("domain", FINANCE)
    (tmp_path / "ok.yaml").write_text(TRIAGE)
    ahead = TRIAGE.replace("    version: 1\n", "    version: 7\n").replace("  name: triage\n", "  name: ahead\n")
    (tmp_path / "ahead.yaml").write_text(ahead)
    ran = server.forge("validate", "--url", server.url, "ok.yaml", "ahead.yaml", cwd=tmp_path)
    assert ran.code == 1
    assert ran.lines == [
        "ok.yaml: ok (agent triage)",
        "ahead.yaml:9:14: dis_version_not_found: Domain 'finance' has no version 7 (latest is 1).",
        "1 problem in 1 of 2 files.",
    ]
    assert ran.err == ""
    assert server.api("GET", "agents").json()["documents"] == []  # validating publishes nothing
    # FOUNDRY_URL alone (as a CI job deploying next would have) keeps validate offline.
    assert server.forge("validate", "ahead.yaml", cwd=tmp_path).code == 0


def test_forge_validate_reports_an_explicit_empty_int_tag_as_a_problem_with_file_and_line(tmp_path):
    (tmp_path / "tagged.yaml").write_text("apiVersion: foundry/v1\nkind: Domain\nmetadata: {name: x}\nspec: !!int\n")
    ran = forge("validate", "tagged.yaml", cwd=tmp_path)
    assert ran.code == 1, (ran.code, ran.out, ran.err)
    assert ran.lines[0].startswith("tagged.yaml:4:"), ran.out
