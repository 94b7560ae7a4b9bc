"""forge: what it prints about the user's own files and settings."""

from tests.forge.conftest import FINANCE, TRIAGE, forge, server, workspace  # noqa: F401


def test_validate_with_a_server_names_the_file_given_in_its_problems(server, workspace):  # noqa: F811
    """A server-found problem is reported under the path the user gave (docs/forge.md:
    `file:line:col`), not the shortened name forge sent for a path past 255 characters."""
    server.publish("domain", FINANCE)
    folder = workspace / ("d" * 120) / ("e" * 140)
    folder.mkdir(parents=True)
    path = folder / "triage.yaml"
    path.write_text(TRIAGE.replace("entity: invoice\n      description", "entity: ghost\n      description"))
    assert len(str(path)) > 255

    ran = server.forge("validate", "--url", server.url, str(path), cwd=workspace)
    assert ran.code == 1, ran.out + ran.err
    problem = next(line for line in ran.lines if "dis_unknown_entity" in line)
    assert problem.startswith(f"{path}:17:15: dis_unknown_entity"), problem

    body = server.forge("--json", "validate", "--url", server.url, str(path), cwd=workspace).json
    file = body["files"][0]
    assert [p["file"] for p in file["problems"]] == [file["file"]]


def test_a_url_carrying_a_token_in_its_query_is_refused_without_echoing_it():
    """A URL holding a credential in its query or fragment (`?token=af_…`) is refused without
    repeating it (CI logs), as a user:password URL is."""
    secret = "af_0123456789ab_SECRETSECRETSECRETSECRET"
    for url in (f"https://acme.example/?token={secret}", f"https://acme.example/mcp#{secret}"):
        ran = forge("pull", "finance@1", env={"FOUNDRY_URL": url, "FOUNDRY_TOKEN": "af_x_y"})
        assert ran.code == 2
        assert secret not in ran.err + ran.out, ran.err
