"""`forge mcp`, `pull` and `test` against servers that answer oddly, and odd arguments: one line,
exit 2, nothing written or relayed (docs/forge.md, Output)."""

import gzip
import json
import os
import subprocess
import time

import pytest

from tests.forge.conftest import FORGE, Stub, forge, stub_serving, workspace  # noqa: F401
from tests.forge.test_hostile_server import _version as hostile_version


@pytest.fixture
def stub():
    with stub_serving() as port:
        yield f"http://127.0.0.1:{port}"


def _env(stub: str) -> dict:
    return {"FOUNDRY_URL": stub, "FOUNDRY_TOKEN": "af_t"}


def _clean_env(extra: dict) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}, **extra}


def _version(kind: str, name: str, content: dict) -> dict:
    return {**hostile_version(kind, name), "content": content}


# --- forge mcp ----------------------------------------------------------------------------------


def test_forge_mcp_refuses_a_compressed_answer_to_its_ping(stub):
    """forge asks for no compression, and a compressed answer to the bridge's ping (50 KiB that
    unpack to 40 MiB) is `unexpected_response`, before any of it is unpacked."""
    asked = []

    def gzipped(handler):
        asked.append(handler.headers.get("Accept-Encoding"))
        answer = b'{"jsonrpc": "2.0", "id": "forge-preflight", "result": {}}' + b" " * (40 * 1024 * 1024)
        body = gzip.compress(answer)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    Stub.routes = {("POST", "/mcp"): gzipped}
    done = subprocess.run(
        [str(FORGE), "mcp", "--url", stub + "/mcp"],
        input=b"",
        env=_clean_env({"FOUNDRY_TOKEN": "af_t"}),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.returncode, asked, done.stderr.decode())
    assert "compress" in done.stderr.decode(), done.stderr.decode()


def test_forge_mcp_gives_up_a_ping_left_unanswered(stub, monkeypatch):
    """A URL whose server takes the connection and never answers stops the bridge once its ping's
    time is up (30 s; 1 s here), not after the relayed calls' long read timeout."""
    import anyio

    from foundry.forge import mcp_bridge
    from foundry.forge.errors import ForgeError

    monkeypatch.setattr(mcp_bridge, "PREFLIGHT_SECONDS", 1.0)
    stop = time.monotonic() + 5

    def silent(handler):
        while time.monotonic() < stop:
            time.sleep(0.1)

    Stub.routes = {("POST", "/mcp"): silent}
    started = time.monotonic()
    with pytest.raises(ForgeError) as refused:
        anyio.run(mcp_bridge._bridge, stub + "/mcp", "af_t")
    assert refused.value.code == "timeout" and time.monotonic() - started < 4


# --- forge pull -----------------------------------------------------------------------------------


def test_pull_with_an_empty_output_name_is_refused_not_written_to_stdout(stub, tmp_path):
    """`forge pull REF -o "$OUT"` with OUT unset: `-o ""` names no file, and is a usage error, not
    the YAML on stdout with exit 0 (forge refuses an empty name elsewhere too)."""
    Stub.routes = {
        ("GET", "/api/v1/agents/triage"): (200, json.dumps({"latest_number": 1}).encode()),
        ("GET", "/api/v1/agents/triage/versions/1"): (
            200,
            json.dumps(_version("agent", "triage", {"a": 1})).encode(),
        ),
    }
    ran = forge("pull", "agent:triage@1", "-o", "", cwd=tmp_path, env=_env(stub))
    assert ran.code == 2, ran
    assert ran.out == "", ran


# --- forge test -----------------------------------------------------------------------------------


def test_forge_test_with_a_server_domain_of_another_shape_is_unexpected_response(stub, workspace):  # noqa: F811
    """The pinned domain fetched from the server is read from its source as a file would be: one
    that is no valid domain of that name is the server's `unexpected_response`, not a crash of
    the tests (`runtime_failed`)."""
    (workspace / "domains/finance.yaml").unlink()
    content = {"spec": {"entities": {"invoice": "an invoice"}}}
    Stub.routes = {
        ("GET", "/api/v1/domains/finance/versions/1"): (
            200,
            json.dumps(_version("domain", "finance", content)).encode(),
        ),
    }
    ran = forge("--json", "test", "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 2, ran
    assert ran.json["error"]["code"] == "unexpected_response", ran
