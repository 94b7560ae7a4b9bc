from tests.forge.conftest import FINANCE, TRIAGE, forge

# A domain named like the agent, written with CRLF line ends, a comment and trailing spaces.
TWIN = (
    "# same name as the agent  \r\n"
    "apiVersion: foundry/v1\r\nkind: Domain\r\nmetadata:\r\n  name: triage\r\n"
    "spec:\r\n  entities:\r\n    thing:\r\n      fields:\r\n        id: {type: string}   \r\n"
)


def test_it_writes_the_published_source_byte_for_byte(server, tmp_path):
    server.publish("domain", FINANCE)
    server.publish("agent", TRIAGE)
    ran = server.forge("pull", "agent:triage@1", "-o", "pulled.yaml", cwd=tmp_path)
    assert ran.code == 0
    assert ran.lines == ["wrote agent triage v1 to pulled.yaml"]
    assert (tmp_path / "pulled.yaml").read_bytes() == TRIAGE.encode()


def test_it_prints_the_source_to_stdout_byte_for_byte(server):
    server.publish("domain", TWIN)
    ran = server.forge("pull", "domain:triage@latest")
    assert ran.code == 0
    assert ran.out.encode() == TWIN.encode()


def test_a_name_both_kinds_use_needs_its_prefix(server):
    server.publish("domain", TWIN)
    server.publish("domain", FINANCE)
    server.publish("agent", TRIAGE)
    ran = server.forge("pull", "triage@1")
    assert ran.code == 2
    assert ran.err == (
        "forge: error: Both an agent and a domain are named 'triage': write agent:triage@1 or domain:triage@1.\n"
    )
    assert server.forge("pull", "finance@1").out == FINANCE


def test_it_answers_json(server, tmp_path):
    server.publish("domain", FINANCE)
    body = server.forge("pull", "--json", "finance@1").json
    assert (body["kind"], body["name"], body["number"], body["source"]) == ("domain", "finance", 1, FINANCE)
    body = server.forge("pull", "--json", "finance@1", "-o", "f.yaml", cwd=tmp_path).json
    assert (body["name"], body["file"], "source" in body) == ("finance", "f.yaml", False)


def test_an_unknown_name_or_version_is_not_found(server):
    server.publish("domain", FINANCE)
    ran = server.forge("pull", "payroll@1")
    assert (ran.code, ran.err) == (2, f"forge: error: {server.url} has no agent or domain named 'payroll'.\n")
    ran = server.forge("pull", "finance@9")
    assert (ran.code, ran.err) == (2, "forge: error: domain finance has no version 9 (latest is 1).\n")
    ran = server.forge("pull", "agent:finance@1")
    assert (ran.code, ran.err) == (2, f"forge: error: {server.url} has no agent 'finance'.\n")


def test_a_malformed_ref_is_a_usage_error():
    ran = forge("pull", "finance", "--url", "http://acme.localhost:1", "--token", "t")
    assert ran.code == 2
    assert "'finance': write NAME@VERSION, e.g. invoice-triage@3 or domain:finance@latest." in ran.err


def test_pull_needs_a_server():
    ran = forge("pull", "finance@1")
    assert (ran.code, ran.err) == (2, "forge: error: Pulling needs a server: --url or FOUNDRY_URL.\n")


def test_pull_from_a_url_that_names_no_workspace_says_so_not_that_the_document_is_missing(live_port):
    """`forge pull finance@1` with FOUNDRY_URL naming a workspace that does not exist (a typo in
    the slug): the server answers 404 `unknown_host` "No workspace is served at this address.",
    and forge shows that reason, not "<url> has no agent or domain named 'finance'", which would
    send the user looking for a document instead of fixing the URL."""
    ran = forge(
        "pull",
        "finance@1",
        env={"FOUNDRY_URL": f"http://no-such-workspace.localhost:{live_port}", "FOUNDRY_TOKEN": "af_whatever"},
    )
    assert ran.code == 2, ran
    assert "has no agent or domain named" not in ran.err, ran.err
    assert "No workspace is served at this address" in ran.err or "unknown_host" in ran.err, ran.err
