"""forge deploy / validate --url with a document whose file name is not UTF-8: Linux file names
are bytes, which Python keeps as lone surrogates; forge sends the name with U+FFFD for them (JSON
takes no lone surrogate) and the deploy goes through."""

import os
import subprocess

from tests.forge.conftest import FINANCE, FORGE, TRIAGE


def _run(server, cwd, *args: bytes):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    env.update({"FOUNDRY_URL": server.url, "FOUNDRY_TOKEN": server.token})
    done = subprocess.run([str(FORGE).encode(), *args], cwd=cwd, env=env, capture_output=True, timeout=60)
    return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")


def test_deploy_of_an_agent_file_whose_name_is_not_utf8(server, tmp_path):
    (tmp_path / "finance.yaml").write_text(FINANCE)
    (tmp_path / os.fsdecode(b"triage-\xe9.yaml")).write_text(TRIAGE)
    code, out, err = _run(server, tmp_path, b"deploy", b"finance.yaml", b"triage-\xe9.yaml")
    assert "not a URL" not in err, out + err
    assert code == 0, out + err
    assert server.api("GET", "agents/triage").status_code == 200


def test_validate_with_a_server_of_a_file_whose_name_is_not_utf8(server, tmp_path):
    server.publish("domain", FINANCE)
    (tmp_path / os.fsdecode(b"triage-\xe9.yaml")).write_text(TRIAGE)
    code, out, err = _run(server, tmp_path, b"validate", b"--url", server.url.encode(), b"triage-\xe9.yaml")
    assert "not a URL" not in err, err
    assert code == 0, out + err
