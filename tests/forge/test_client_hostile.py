"""forge as a client of a server that misbehaves.

docs/forge.md, Output: "What a server answers is bounded and shown safely: each answer whole
within 30 s (`timeout`) and at most 32 MiB (`response_too_large`); an answer of another shape is
`unexpected_response` (exit 2); names and messages from it are printed with control and
text-direction characters escaped (`\\x1b`), so none moves the cursor or starts a line of its own."
"""

import contextlib
import gzip
import json
import os
import subprocess
import time
import tracemalloc

import pytest

from foundry.forge import client as client_module
from foundry.forge.client import Client
from foundry.forge.errors import ForgeError
from tests.forge.conftest import FORGE, forge, stub_serving

ESC = "\x1b]2;pwned\x07\x1b[2J"  # set the window title, clear the screen


def test_a_compressed_answer_is_bounded_by_its_decoded_size_before_it_is_held_in_memory(monkeypatch):
    """httpx unpacked any Content-Encoding the server named before client._send counted the bytes,
    so the "at most 32 MiB" bound did not bound memory (32 KiB of zstd held 2.1 GiB for `forge
    pull`). forge asks for no compression now, and refuses one it did not ask for, unread."""
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 64 * 1024)
    body = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)

    def bomb(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(OSError):
            handler.wfile.write(body)

    with stub_serving(routes={("GET", "/api/v1/agents/triage"): bomb}) as port:
        tracemalloc.start()
        try:
            with Client(f"http://127.0.0.1:{port}", "af_t") as client, pytest.raises(ForgeError) as error:
                client.document("agent", "triage")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert error.value.code in ("response_too_large", "unexpected_response")  # compressed: refused unread
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB held to refuse a {len(body)}-byte answer"


def test_an_answer_whose_headers_trickle_in_ends_at_the_timeout():
    """The whole answer arrives within forge's timeout (30 s; 1 s here), its headers too: the
    deadline was checked only while reading the body, so a server sending a header line every
    0.1 s (each read within httpx's per-read timeout) held forge as long as it liked."""

    def slow_headers(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for i in range(60):
                handler.wfile.write(b"X-Slow-%d: 1\r\n" % i)
                handler.wfile.flush()
                time.sleep(0.1)
            body = b'{"latest_number": 1}'
            handler.wfile.write(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass

    with stub_serving(routes={("GET", "/api/v1/agents/triage"): slow_headers}) as port:
        started = time.monotonic()
        with Client(f"http://127.0.0.1:{port}", "af_t", timeout=1.0) as client, pytest.raises(ForgeError) as error:
            client.document("agent", "triage")
        elapsed = time.monotonic() - started
    assert error.value.code == "timeout"
    assert elapsed < 3, f"the answer took {elapsed:.1f} s with a 1 s timeout"


def test_a_server_diff_change_of_another_shape_is_unexpected_response_not_an_internal_error():
    """The diff answer's `changes` are checked only to be objects (client.SHAPES["diff"]); a change
    whose `action` is a list was `internal_error` ("unhashable type: 'list'"); a change's fields
    are part of the shape now: `unexpected_response` (docs/forge.md)."""
    routes = {
        ("GET", "/api/v1/domains/finance"): (200, json.dumps({"name": "finance", "latest_number": 3}).encode()),
        ("GET", "/api/v1/domains/finance/diff"): (
            200,
            json.dumps({"changes": [{"action": ["added"], "what": "entity", "name": "x"}], "text": "x"}).encode(),
        ),
    }
    with stub_serving(routes=routes) as port:
        url = f"http://127.0.0.1:{port}"
        ran = forge(
            "--json", "diff", "domain:finance@1", "domain:finance@2", env={"FOUNDRY_URL": url, "FOUNDRY_TOKEN": "af_t"}
        )
    assert ran.code == 2, ran
    assert ran.json["error"]["code"] == "unexpected_response", ran


def test_forge_mcp_logs_a_servers_refusal_on_stderr_with_its_control_characters_escaped():
    """A server's refusal logged on stderr went raw: its escape sequences reached the terminal or
    the client's log, and its newline wrote a line of the server's choosing. Every log line is
    escaped now, as every other forge error is (output.shown)."""
    asked = []

    def answer(handler):
        asked.append(1)
        if len(asked) == 1:  # the preflight ping
            status, body = 200, {"jsonrpc": "2.0", "id": "forge-preflight", "result": {}}
        else:
            status, body = 401, {"error": {"code": "unauthenticated", "message": "revoked" + ESC + "\nforged line"}}
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    with stub_serving(routes={("POST", "/mcp"): answer}) as port:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
        env.update(FOUNDRY_URL=f"http://127.0.0.1:{port}/mcp", FOUNDRY_TOKEN="af_t")
        done = subprocess.run(
            [str(FORGE), "mcp"],
            input=(json.dumps(initialize) + "\n").encode(),
            env=env,
            capture_output=True,
            timeout=60,
        )
    err = done.stderr.decode()
    assert "refused the token: revoked" in err, err  # the refusal was logged
    assert "\x1b" not in err and "\x07" not in err, repr(err)
    assert not any(line.startswith("forged line") for line in err.splitlines()), repr(err)
