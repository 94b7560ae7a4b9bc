"""forge deploy against the live server (gunicorn), addressed at the tenant's own host name."""

import pytest

from foundry.manifests import validate
from tests.conftest import ROOT, free_port
from tests.forge.conftest import FINANCE, TRIAGE, example_files, forge, token_for


def _examples_deployed() -> list[str]:
    """What deploying examples/ to an empty tenant prints: domains, agents, then the deployments."""
    docs = [validate((ROOT / f).read_bytes(), f) for f in example_files()]
    domains = [d for d in docs if d.kind == "domain"]
    agents = [d for d in docs if d.kind == "agent"]
    lines = [f"{d.kind} {d.name} v1 (new)" for d in domains + agents]
    for agent in agents:
        pin = agent.data["spec"]["domain"]
        lines.append(f"agent {agent.name} v1 deployed (pins {pin['name']} v{pin['version']})")
    return lines


def test_it_publishes_the_examples_and_deploys_them(server):
    ran = server.forge("deploy", "examples/", "--message", "First cut")
    assert ran.code == 0, ran.err
    assert ran.lines == _examples_deployed()
    agent = server.api("GET", "agents/invoice-triage").json()
    assert (agent["latest_number"], agent["live"]["version"]) == (1, 1)
    version = server.api("GET", "domains/finance/versions/1").json()
    assert version["message"] == "First cut"
    assert version["author_name"].startswith("API token ")

    again = server.forge("deploy", "examples/")
    assert again.code == 0
    assert again.lines == [
        line.replace("(new)", "(unchanged)").replace(" deployed (", " already live (") for line in _examples_deployed()
    ]
    assert server.api("GET", "domains/finance").json()["latest_number"] == 1
    assert len(server.api("GET", "agents/invoice-triage/deployments").json()["deployments"]) == 1


def test_it_says_when_the_pinned_domain_has_a_newer_version(server, workspace):
    assert server.forge("deploy", "domains/", "agents/", cwd=workspace).code == 0
    (workspace / "domains/finance.yaml").write_text(FINANCE.replace("        received_on: {type: date}\n", ""))
    ran = server.forge("deploy", "agents/triage.yaml", "domains/finance.yaml", cwd=workspace)
    assert ran.code == 0, ran.out + ran.err
    assert ran.lines == [
        "domain finance v2 (new)",
        "agent triage v1 (unchanged)",
        "agent triage v1 already live (pins finance v1; finance v2 is available)",
    ]


def test_a_document_with_problems_publishes_nothing(server, workspace):
    (workspace / "agents/triage.yaml").write_text(TRIAGE + "  approvals:\n    tools: [nope]\n")
    ran = server.forge("deploy", "domains/", "agents/", cwd=workspace)
    assert ran.code == 1
    assert ran.lines == [
        "agents/triage.yaml:29:13: approval_unknown_tool: No tool named 'nope' to require approval for.",
        "1 problem in 1 of 2 files. Nothing was published.",
    ]
    assert server.api("GET", "domains").json()["documents"] == []


def test_a_publish_the_server_refuses_stops_the_deploy(server, workspace):
    (workspace / "agents/triage.yaml").write_text(TRIAGE.replace("    version: 1\n", "    version: 7\n"))
    ran = server.forge("deploy", "domains/", "agents/", cwd=workspace)
    assert ran.code == 1
    assert ran.lines == [
        "domain finance v1 (new)",
        "agents/triage.yaml:9:14: dis_version_not_found: Domain 'finance' has no version 7 (latest is 1).",
        "agents/triage.yaml: refused by the server: The document has problems. (document_invalid)",
        "Already published: domain finance v1.",
    ]
    assert server.api("GET", "agents/triage").status_code == 404


def test_json_lists_versions_and_deployments_with_progress_on_stderr(server, workspace):
    ran = server.forge("--json", "deploy", "agents/", "domains/", cwd=workspace)
    assert ran.code == 0
    body = ran.json
    assert body["ok"] is True
    assert [(v["file"], v["kind"], v["number"], v["created"]) for v in body["published"]] == [
        ("domains/finance.yaml", "domain", 1, True),  # domains first, whatever the order given
        ("agents/triage.yaml", "agent", 1, True),
    ]
    deployment = body["deployments"][0]
    assert (deployment["agent"], deployment["version"], deployment["domain"]) == (
        "triage",
        1,
        {"name": "finance", "version": 1},
    )
    assert ran.err.splitlines() == [
        "domain finance v1 (new)  [1/2]",
        "agent triage v1 (new)  [2/2]",
        "agent triage v1 deployed (pins finance v1)",
    ]


def test_a_refusal_in_json(server, workspace):
    (workspace / "agents/triage.yaml").write_text(TRIAGE.replace("    version: 1\n", "    version: 7\n"))
    body = server.forge("deploy", "--json", "domains/", "agents/", cwd=workspace).json
    assert body["ok"] is False
    assert [(v["kind"], v["name"], v["number"]) for v in body["published"]] == [("domain", "finance", 1)]
    assert body["error"]["code"] == "document_invalid"
    assert [(p["code"], p["file"], p["line"], p["column"]) for p in body["problems"]] == [
        ("dis_version_not_found", "agents/triage.yaml", 9, 14)
    ]


def test_a_token_of_another_tenant_is_refused(server, globex, django_db_blocker, workspace):
    outsider = token_for(globex, django_db_blocker)
    ran = forge("deploy", "domains/", "--url", server.url, "--token", outsider, cwd=workspace)
    assert ran.code == 2
    assert ran.err == (f"forge: error: {server.url} refused the token: The token is not valid, expired or revoked.\n")
    assert server.api("GET", "domains").json()["documents"] == []


def test_a_read_only_token_cannot_deploy(server, django_db_blocker, workspace):
    reader = token_for(server.tenant, django_db_blocker, role="viewer", scopes=("read",))
    ran = forge("deploy", "domains/", "--url", server.url, "--token", reader, cwd=workspace)
    assert ran.code == 2
    assert ran.err.startswith(f"forge: error: {server.url} refused: ")
    assert server.api("GET", "domains").json()["documents"] == []


def test_an_unreachable_server_is_a_connection_error(workspace):
    url = f"http://127.0.0.1:{free_port()}"
    ran = forge("deploy", "domains/", "--url", url, "--token", "af_x", cwd=workspace)
    assert ran.code == 2
    assert ran.err.startswith(f"forge: error: Cannot reach {url}: ")


def test_deploy_needs_a_server_and_a_token():
    ran = forge("deploy", "examples/")
    assert (ran.code, ran.err) == (2, "forge: error: Deploying needs a server: --url or FOUNDRY_URL.\n")
    ran = forge("deploy", "examples/", "--url", "http://acme.localhost:1")
    assert (ran.code, ran.err) == (2, "forge: error: Deploying needs an API token: --token or FOUNDRY_TOKEN.\n")
    ran = forge("deploy", "examples/", "--url", "ftp://acme", "--token", "t")
    assert ran.code == 2
    assert ran.err == "forge: error: --url 'ftp://acme': write it like https://acme.foundry.example.\n"


def test_migrate_repins_the_live_agent_only_when_it_stays_valid(server, workspace):
    assert server.forge("deploy", "domains/", "agents/", cwd=workspace).code == 0
    server.publish("domain", FINANCE.replace("        received_on: {type: date}\n", ""))
    ran = server.forge("migrate", "triage")
    assert (ran.code, ran.lines) == (0, ["agent triage v2 deployed (pins finance v2)"])
    assert server.api("GET", "agents/triage").json()["live"]["version"] == 2
    again = server.forge("migrate", "triage")
    assert (again.code, again.lines) == (0, ["agent triage v2 already pins finance v2"])

    server.publish("domain", FINANCE.replace("    invoice:", "    bill:").replace("entity: invoice", "entity: bill"))
    broken = server.forge("migrate", "triage", "--domain-version", "3")
    assert broken.code == 1
    assert broken.lines[0].startswith("agents/triage.yaml:17:15: dis_unknown_entity:")
    assert "not migrated" in broken.lines[-1]
    assert server.api("GET", "agents/triage").json()["live"]["version"] == 2
    assert server.forge("migrate", "nobody").code == 2


@pytest.mark.parametrize("name", ["x/../y", "../tokens", "Triage", "triage?x=1", "a" * 64])
def test_migrate_takes_an_agent_name_only_and_sends_nothing_else(name):
    # Port 1 answers nothing: a request would fail with a connection error, not this usage error.
    ran = forge("migrate", name, "--url", "http://acme.localhost:1", "--token", "t")
    assert ran.code == 2
    assert f"{name!r} is not an agent name: a lowercase letter, then letters, digits and -, at most 63." in ran.err


def test_a_url_naming_no_workspace_is_a_connection_error_not_a_refused_document(server, workspace, live_port):
    """docs/forge.md: exit 1 is an invalid or refused document, 2 a usage or connection error.
    404 `unknown_host` was reported as "domains/finance.yaml: refused by the server", exit 1 —
    a CI job read the file as broken; pull, validate --url and migrate exit 2 for it."""
    env = {"FOUNDRY_URL": f"http://no-such-workspace.localhost:{live_port}", "FOUNDRY_TOKEN": server.token}
    ran = forge("deploy", "domains/", "agents/", cwd=workspace, env=env)
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    assert "refused by the server" not in ran.out and "Stopped at" in ran.out, ran.out


def test_one_file_named_twice_is_deployed_once_not_refused_as_a_duplicate(server, workspace):
    """A folder and the file in it as `find .` prints it were two files defining one domain
    (`duplicate_document`, the file against itself)."""
    ran = server.forge("deploy", "domains/", "./domains/finance.yaml", str(workspace / "agents"), cwd=workspace)
    assert ran.code == 0, (ran.code, ran.out, ran.err)
    assert server.api("GET", "agents/triage").json()["live"]["version"] == 1
