"""forge test: the manifest's sandbox tests through the real agent runtime, scripted provider."""

import re

import pytest

from tests.forge.conftest import EXAMPLES, FINANCE, TRIAGE, forge

FAILING_TEST = """\
    - name: rejects-large-invoices
      input: Triage invoice INV-2.
      script:
        - respond: INV-2 can be approved.
      expect:
        tools_called: [find_invoices]
        output_contains: [rejected]
"""


def _timing_free(text: str) -> str:
    return re.sub(r"\(\d+ steps, \d+ ms\)", "(… steps, … ms)", text)


@pytest.mark.parametrize("manifest", sorted(p.name for p in (EXAMPLES / "agents").glob("*.yaml")))
def test_the_examples_pass(manifest):
    ran = forge("test", f"examples/agents/{manifest}")
    assert ran.code == 0, ran.out + ran.err
    assert all(line.startswith("PASS ") for line in ran.lines[:-1])
    assert re.fullmatch(r"(\d+) passed, 0 failed \(\1 tests?, provider scripted\)\.", ran.lines[-1])


def test_one_line_per_test_then_a_summary(workspace):
    ran = forge("test", "agents/triage.yaml", cwd=workspace)
    assert ran.code == 0, ran.out + ran.err
    assert (
        _timing_free(ran.out)
        == "PASS finds-the-invoice (… steps, … ms)\n1 passed, 0 failed (1 test, provider scripted).\n"
    )
    assert ran.err == (
        "note: Using domain 'finance' from domains/finance.yaml; offline its version (v1 pinned) is not checked.\n"
    )


def test_a_failing_expectation_fails_the_run(workspace):
    (workspace / "agents/triage.yaml").write_text(TRIAGE + FAILING_TEST)
    ran = forge("test", "agents/triage.yaml", cwd=workspace)
    assert ran.code == 1
    assert _timing_free(ran.out).splitlines() == [
        "PASS finds-the-invoice (… steps, … ms)",
        "FAIL rejects-large-invoices (… steps, … ms)",
        "    output_contains: 'rejected' is not in the output 'INV-2 can be approved.'.",
        "    tools_called: 'find_invoices' was not called (none).",
        "1 passed, 1 failed (2 tests, provider scripted).",
    ]


def test_it_runs_only_the_tests_named_and_answers_json(workspace):
    (workspace / "agents/triage.yaml").write_text(TRIAGE + FAILING_TEST)
    ran = forge("test", "--json", "--test", "rejects-large-invoices", "agents/triage.yaml", cwd=workspace)
    assert ran.code == 1
    body = ran.json
    assert (body["agent"], body["provider"], body["passed"]) == ("triage", "scripted", False)
    assert body["domain"] == {"name": "finance", "version": 1, "from": "domains/finance.yaml"}
    assert [(t["name"], t["passed"], t["status"], t["output"]) for t in body["tests"]] == [
        ("rejects-large-invoices", False, "succeeded", "INV-2 can be approved.")
    ]
    assert {k: body["summary"][k] for k in ("total", "passed", "failed")} == {"total": 1, "passed": 0, "failed": 1}
    assert _timing_free(ran.err).startswith("FAIL rejects-large-invoices (… steps, … ms)\n")  # progress: stderr
    # The note stderr carries without --json is in the document (docs/forge.md), not lost.
    assert body["notes"] == [
        "Using domain 'finance' from domains/finance.yaml; offline its version (v1 pinned) is not checked."
    ]


def test_an_unknown_test_name_is_a_usage_error(workspace):
    ran = forge("test", "agents/triage.yaml", "--test", "nope", cwd=workspace)
    assert ran.code == 2
    assert ran.err.endswith("forge: error: agents/triage.yaml has no test 'nope' (its tests: finds-the-invoice).\n")


def test_the_pinned_domain_comes_from_the_files_given(tmp_path):
    (tmp_path / "triage.yaml").write_text(TRIAGE)
    (tmp_path / "finance.yml").write_text(FINANCE)
    (tmp_path / "payroll.yaml").write_text(FINANCE.replace("name: finance", "name: payroll"))
    ran = forge("test", "triage.yaml", "--domain", "payroll.yaml", cwd=tmp_path)
    assert (ran.code, ran.err) == (
        2,
        "forge: error: None of the --domain files is the domain 'finance' triage.yaml pins.\n",
    )
    ran = forge("test", "triage.yaml", "--domain", "payroll.yaml", "--domain", "finance.yml", cwd=tmp_path)
    assert ran.code == 0, ran.err


def test_without_the_pinned_domain_nothing_runs(tmp_path):
    (tmp_path / "triage.yaml").write_text(TRIAGE)
    ran = forge("test", "triage.yaml", cwd=tmp_path)
    assert ran.code == 2
    assert ran.err == (
        "forge: error: triage.yaml pins domain 'finance' v1: give --domain FILE, put it at ../domains/finance.yaml,"
        " or fetch it from a server with --url and --token.\n"
    )


def test_a_manifest_with_problems_runs_nothing(workspace):
    (workspace / "agents/triage.yaml").write_text(TRIAGE.replace("entity: invoice", "entity: receipt"))
    ran = forge("test", "agents/triage.yaml", cwd=workspace)
    assert ran.code == 1
    assert ran.lines == ["agents/triage.yaml:17:15: dis_unknown_entity: The pinned domain has no entity 'receipt'."]


def test_a_domain_is_not_a_manifest(workspace):
    ran = forge("test", "domains/finance.yaml", cwd=workspace)
    assert (ran.code, ran.err) == (
        2,
        "forge: error: domains/finance.yaml is a domain; forge test runs an agent manifest's tests.\n",
    )


def test_it_fetches_the_pinned_domain_from_the_server(server, tmp_path):
    server.publish("domain", FINANCE)
    (tmp_path / "triage.yaml").write_text(TRIAGE)
    ran = server.forge("test", "triage.yaml", cwd=tmp_path)
    assert ran.code == 0, ran.err
    assert ran.lines[-1] == "1 passed, 0 failed (1 test, provider scripted)."
    assert ran.err == ""  # the server's copy is exactly the version pinned: nothing to warn about


def test_it_runs_the_tests_with_a_real_provider_from_the_environment(workspace):
    """--provider openai: credentials and base URL from OPENAI_API_KEY / OPENAI_BASE_URL, here a
    real local server speaking the chat-completions wire format (a local vLLM or Ollama alike)."""
    from tests.providers.fake_models import FakeModelServer, Reply, openai_completion

    server = FakeModelServer()
    server.queue(
        Reply(body=openai_completion(tool_calls=[("c1", "find_invoices", {"question": "INV-1"})])),
        Reply(body=openai_completion("INV-1 can be approved.")),
    )
    try:
        env = {"OPENAI_API_KEY": "sk-local-123456789", "OPENAI_BASE_URL": f"{server.origin}/v1"}
        ran = forge("test", "--provider", "openai", "agents/triage.yaml", cwd=workspace, env=env)
        missing = forge("test", "--provider", "openai", "agents/triage.yaml", cwd=workspace)
    finally:
        server.close()
    assert ran.code == 0, ran.out + ran.err
    assert ran.lines[-1] == "1 passed, 0 failed (1 test, provider openai)."
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer sk-local-123456789"] * 2
    assert missing.code == 2 and "--provider openai needs OPENAI_API_KEY in the environment" in missing.err
    assert "sk-local" not in missing.err + missing.out
