from tests.forge.conftest import FINANCE, TRIAGE, forge

FINANCE_2 = (
    FINANCE.replace("received_on: {type: date}", "received_on: {type: datetime}")
    .replace("when: amount > 10000", "when: amount > 5000")
    .replace("    AP: Accounts payable.\n", "    PO: Purchase order.\n")
)
CHANGES = [
    '~ field invoice.received_on: type "date" → "datetime"',
    '~ rule large-invoice: when "amount > 10000" → "amount > 5000"',
    "- glossary term AP",
    "+ glossary term PO",
    "",
]


def test_it_shows_structural_changes_then_the_unified_diff(tmp_path):
    (tmp_path / "old.yaml").write_text(FINANCE)
    (tmp_path / "new.yaml").write_text(FINANCE_2)
    ran = forge("diff", "old.yaml", "new.yaml", cwd=tmp_path)
    assert ran.code == 0
    assert ran.lines[:7] == [*CHANGES, "--- old.yaml", "+++ new.yaml"]
    assert ran.lines[7].startswith("@@ ")
    diff = set(ran.lines[8:])
    assert {"-        received_on: {type: date}", "+        received_on: {type: datetime}"} <= diff
    assert {"-    AP: Accounts payable.", "+    PO: Purchase order."} <= diff


def test_identical_files(tmp_path):
    (tmp_path / "a.yaml").write_text(FINANCE)
    (tmp_path / "b.yaml").write_text(FINANCE)
    ran = forge("diff", "a.yaml", "b.yaml", cwd=tmp_path)
    assert (ran.code, ran.lines) == (0, ["a.yaml and b.yaml are identical."])


def test_it_answers_json(tmp_path):
    (tmp_path / "old.yaml").write_text(FINANCE)
    (tmp_path / "new.yaml").write_text(FINANCE_2)
    body = forge("diff", "--json", "old.yaml", "new.yaml", cwd=tmp_path).json
    assert (body["kind"], body["from"], body["to"], body["identical"]) == ("domain", "old.yaml", "new.yaml", False)
    assert body["changes"][2] == {
        "action": "removed",
        "what": "glossary term",
        "name": "AP",
        "before": "Accounts payable.",
        "after": None,
    }
    assert body["text"].startswith("--- old.yaml\n+++ new.yaml\n@@ ")


def test_a_domain_and_an_agent_cannot_be_compared(workspace):
    ran = forge("diff", "domains/finance.yaml", "agents/triage.yaml", cwd=workspace)
    assert (ran.code, ran.err) == (
        2,
        "forge: error: domains/finance.yaml is a domain and agents/triage.yaml an agent: nothing to compare.\n",
    )


def test_an_unreadable_document_is_reported_as_invalid(workspace):
    (workspace / "bad.yaml").write_text("kind: Domain\nspec: [\n")
    ran = forge("diff", "bad.yaml", "domains/finance.yaml", cwd=workspace)
    assert ran.code == 1
    assert ran.lines[0].startswith("bad.yaml:3:1: yaml_syntax: ")


def test_a_missing_file_or_a_version_without_server_is_a_usage_error(workspace):
    ran = forge("diff", "domains/finance.yaml", "nowhere.yaml", cwd=workspace)
    assert (ran.code, ran.err) == (2, "forge: error: Cannot read nowhere.yaml: No such file or directory.\n")
    ran = forge("diff", "domains/finance.yaml", "finance@1", cwd=workspace)
    assert (ran.code, ran.err) == (
        2,
        "forge: error: Comparing published versions needs a server: --url or FOUNDRY_URL.\n",
    )


def test_it_compares_published_versions_and_a_file_with_a_version(server, tmp_path):
    server.publish("domain", FINANCE)
    server.publish("domain", FINANCE_2)
    ran = server.forge("diff", "finance@1", "finance@latest")
    assert ran.code == 0, ran.err
    assert ran.lines[:7] == [*CHANGES, "--- domains/finance.yaml@1", "+++ domains/finance.yaml@2"]

    (tmp_path / "mine.yaml").write_text(FINANCE_2)
    ran = server.forge("diff", "finance@1", "mine.yaml", cwd=tmp_path)
    assert ran.code == 0, ran.err
    assert ran.lines[:7] == [*CHANGES, "--- finance@1", "+++ mine.yaml"]

    ran = server.forge("diff", "finance@2", "mine.yaml", cwd=tmp_path)
    assert ran.lines == ["finance@2 and mine.yaml are identical."]

    ran = server.forge("diff", "finance@1", "finance@3")
    assert (ran.code, ran.err) == (2, "forge: error: domain finance has no version 3 (latest is 2).\n")


def test_versions_of_two_documents(server):
    server.publish("domain", FINANCE)
    server.publish("agent", TRIAGE)
    server.publish("agent", TRIAGE.replace("name: triage", "name: triage-two").replace("Triage invoices.", "Sort."))
    ran = server.forge("diff", "triage@1", "agent:triage-two@1")
    assert ran.code == 0, ran.err
    assert ran.lines[:3] == [
        '~ metadata name: "triage" → "triage-two"',
        '~ instructions: "Triage invoices." → "Sort."',
        "",
    ]


def test_a_file_name_with_a_line_break_does_not_start_a_line_of_its_own_in_the_diff(tmp_path):
    """docs/forge.md (Output): names are printed with control characters escaped, so none starts
    a line of its own. A file name's line break is escaped in the diff's `---`/`+++` header too,
    as `forge validate` escapes it: the rest of the name cannot forge a `+++ other` line."""
    old = tmp_path / "old\n+++ forged.yaml"
    old.write_text(FINANCE)
    new = tmp_path / "new.yaml"
    new.write_text(FINANCE.replace("amount > 10000", "amount > 5000"))
    ran = forge("diff", str(old), str(new))
    assert ran.code == 0, ran
    assert not any(line.startswith("+++ forged.yaml") for line in ran.lines), ran.out
