"""forge against a hostile or compromised server: what it prints, how much it reads, how long it waits."""

import contextlib
import json
import time

import pytest

from foundry.forge import client as client_module
from foundry.forge.client import Client
from foundry.forge.errors import ForgeError
from tests.forge.conftest import Stub, forge, stub_serving, workspace  # noqa: F401

ESC = "\x1b]2;pwned\x07\x1b[2J\x1b[1A"  # set the window title, clear the screen, move the cursor


@pytest.fixture
def stub():
    with stub_serving() as port:
        yield f"http://127.0.0.1:{port}"


def _json(status: int, body) -> tuple[int, bytes]:
    return status, json.dumps(body).encode()


def _version(kind: str, name: str, number: int = 1) -> dict:
    return {
        "kind": kind,
        "name": name,
        "number": number,
        "digest": "x",
        "message": "",
        "created_at": "2024-01-01T00:00:00Z",
        "source": "a: 1\n",
        "content": {"a": 1},
    }


def _env(stub: str) -> dict:
    return {"FOUNDRY_URL": stub, "FOUNDRY_TOKEN": "af_t"}


# --- what reaches the terminal ----------------------------------------------------------------


def _clean(text: str) -> None:
    """No escape sequence, and no line forged by a name: every line is one forge wrote."""
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert not any(line.startswith(("agent forged", "forged.yaml")) for line in text.splitlines()), text


def test_a_servers_refusal_is_shown_with_its_control_characters_escaped(stub, workspace):  # noqa: F811
    Stub.routes = {
        ("POST", "/api/v1/domains"): _json(422, {"error": {"code": "bad" + ESC, "message": "refused" + ESC}}),
    }
    ran = forge("deploy", "domains/finance.yaml", "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 1, ran
    assert "refused by the server: refused\\x1b]2;pwned" in ran.out, ran.out
    _clean(ran.out + ran.err)


def test_names_a_server_answers_are_shown_escaped_and_forge_no_line(stub, workspace):  # noqa: F811
    evil = "finance" + ESC + "\nagent forged v9 deployed (pins finance v9)"
    Stub.routes = {
        ("POST", "/api/v1/domains"): _json(201, {"version": _version("domain", evil), "created": True}),
        ("POST", "/api/v1/agents"): _json(201, {"version": _version("agent", "triage" + ESC), "created": True}),
        ("POST", f"/api/v1/agents/triage{ESC}/deploy"): _json(201, {"agent": "triage", "version": 1}),
    }
    ran = forge("deploy", "domains/finance.yaml", "agents/triage.yaml", cwd=workspace, env=_env(stub))
    _clean(ran.out + ran.err)


def test_validate_against_a_server_shows_its_kind_and_name_escaped(stub, workspace):  # noqa: F811
    evil = "triage" + ESC + "\nforged.yaml: ok (agent forged)"
    Stub.routes = {
        ("POST", "/api/v1/validate"): _json(200, {"valid": True, "problems": [], "kind": "agent", "name": evil}),
    }
    ran = forge("validate", "--url", stub, "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 0, ran
    _clean(ran.out)


def test_pull_writes_the_source_as_sent_and_shows_the_name_escaped(stub, tmp_path):
    Stub.routes = {
        ("GET", "/api/v1/agents/triage"): _json(200, {"name": "triage", "latest_number": 1}),
        ("GET", "/api/v1/agents/triage/versions/1"): _json(200, _version("agent", "triage" + ESC)),
    }
    ran = forge("pull", "agent:triage@1", "-o", "out.yaml", cwd=tmp_path, env=_env(stub))
    assert ran.code == 0, ran
    assert (tmp_path / "out.yaml").read_bytes() == b"a: 1\n"
    _clean(ran.out)


# --- answers of the wrong shape --------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        (200, b"[" * 100_000),
        (200, b'{"valid": false, "problems": ["not an object"]}'),
        (200, b'{"valid": false, "problems": [{"code": "x", "line": "ten"}]}'),
        (200, b'{"valid": false, "problems": [{"code": "x", "line": -1}]}'),
    ],
    ids=["nested-json", "problem-not-object", "line-not-number", "line-negative"],
)
def test_an_answer_of_another_shape_is_said_plainly_not_an_internal_error(stub, workspace, answer):  # noqa: F811
    Stub.routes = {("POST", "/api/v1/validate"): answer}
    ran = forge("validate", "--url", stub, "agents/triage.yaml", cwd=workspace, env=_env(stub))
    assert ran.code == 2, ran
    assert "Unexpected" not in ran.err and "Foundry" in ran.err, ran.err


def test_a_source_that_is_no_utf8_text_is_said_plainly(stub, tmp_path):
    Stub.routes = {
        ("GET", "/api/v1/agents/triage"): _json(200, {"name": "triage", "latest_number": 1}),
        ("GET", "/api/v1/agents/triage/versions/1"): (
            200,
            json.dumps({**_version("agent", "triage"), "source": "a: \ud800"}).encode(),
        ),
    }
    ran = forge("pull", "agent:triage@1", cwd=tmp_path, env=_env(stub))
    assert ran.code == 2 and "not UTF-8" in ran.err and "Unexpected" not in ran.err, ran


# --- huge and endless answers ----------------------------------------------------------------


def _trickle(handler):
    """200, then a body of no announced length that never ends: a byte every 0.1 s."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Connection", "close")
    handler.end_headers()
    try:
        handler.wfile.write(b"{")
        for _ in range(300):
            time.sleep(0.1)
            handler.wfile.write(b" ")
            handler.wfile.flush()
    except OSError:
        pass


def test_an_answer_sent_a_byte_at_a_time_ends_at_the_timeout(stub):
    """httpx's timeouts bound each read; the whole exchange ends at forge's timeout (30 s; 1 s here)."""
    Stub.routes = {("GET", "/api/v1/agents/triage"): _trickle}
    started = time.monotonic()
    with Client(stub, "af_t", timeout=1.0) as client, pytest.raises(ForgeError) as error:
        client.document("agent", "triage")
    assert error.value.code == "timeout"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "unannounced"])
def test_an_answer_larger_than_any_the_api_sends_is_refused_before_it_is_read_whole(stub, monkeypatch, announced):
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 64 * 1024)
    body = b" " * (1024 * 1024) + b"{}"

    def huge(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if announced:
            handler.send_header("Content-Length", str(len(body)))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        with contextlib.suppress(OSError):  # forge hung up, as it should
            handler.wfile.write(body)

    Stub.routes = {("GET", "/api/v1/agents/triage"): huge}
    with Client(stub, "af_t") as client, pytest.raises(ForgeError) as error:
        client.document("agent", "triage")
    assert error.value.code == "response_too_large"
