"""forge workflows against the live server report what the server will do."""

from tests.forge.conftest import FINANCE, TRIAGE, forge


def test_validate_with_a_server_refuses_the_same_document_twice_as_deploy_does(server, workspace):
    """`forge validate --url` reports two files defining the same document as `duplicate_document`
    (exit 1), as offline validation does and as `forge deploy` refuses them."""
    server.publish("domain", FINANCE)
    (workspace / "copy.yaml").write_text(TRIAGE.replace("Triage invoices.", "Triage invoices, differently."))
    deployed = server.forge("deploy", "agents/triage.yaml", "copy.yaml", cwd=workspace)
    assert deployed.code == 1 and "duplicate_document" in deployed.out  # deploy refuses them

    ran = server.forge("validate", "--url", server.url, "agents/triage.yaml", "copy.yaml", cwd=workspace)
    assert ran.code == 1, ran.out
    assert any("duplicate_document" in line for line in ran.lines), ran.out


def _deep_copy(workspace, text: str):
    """A valid manifest at a path longer than 255 characters (a deep CI checkout, say)."""
    folder = workspace / ("d" * 120) / ("e" * 120)
    folder.mkdir(parents=True)
    path = folder / "triage.yaml"
    path.write_text(text)
    assert len(str(path)) > 255
    return path


def test_deploy_of_a_valid_file_at_a_long_path_is_not_refused_half_way(server, workspace):
    """A valid manifest at a path longer than the API's 255-character `filename` is deployed: forge
    sends the path's end as the name (its own messages keep the whole path), so its own metadata
    never refuses a document half way through a deploy."""
    path = _deep_copy(workspace, TRIAGE)
    ran = server.forge("deploy", "domains/finance.yaml", str(path), cwd=workspace)
    assert ran.code == 0, ran.out + ran.err
    assert server.api("GET", "agents/triage").status_code == 200


def test_validate_with_a_server_of_a_valid_file_at_a_long_path(server, workspace):
    """The same file validates on the server (`forge validate --url`), exit 0."""
    server.publish("domain", FINANCE)
    path = _deep_copy(workspace, TRIAGE)
    ran = server.forge("validate", "--url", server.url, str(path), cwd=workspace)
    assert ran.code == 0, ran.err
    assert ran.lines[-1] == "1 file valid."


def test_foundry_url_in_its_endpoint_form_does_not_make_published_documents_vanish(server, workspace):
    """FOUNDRY_URL may name the MCP endpoint (`…/mcp`, docs/mcp.md: shared with the other forge
    commands): the REST commands use the tenant URL under it and find what is published."""
    server.publish("domain", FINANCE)
    env = {"FOUNDRY_URL": server.url + "/mcp", "FOUNDRY_TOKEN": server.token}
    pulled = forge("pull", "domain:finance@1", cwd=workspace, env=env)
    assert pulled.code == 0, pulled.err
    assert pulled.out == FINANCE
    deployed = forge("deploy", "domains/", "agents/", cwd=workspace, env=env)
    assert deployed.code == 0, deployed.out + deployed.err
