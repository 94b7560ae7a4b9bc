"""The http tool (foundry/runtime/network.py, foundry/runtime/tools.py): one deadline for the
whole call (name resolution and the body included), declared hosts with their default port, and
the declared URL's query parameters, which a call cannot change."""

import copy
import socket
import threading
import time

import pytest

from foundry.manifests import validate
from foundry.runtime.network import FetchError, NetworkPolicy, fetch
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import reply

LOOPBACK = NetworkPolicy(allow_private=True)


@pytest.fixture
def stalling_body():
    """A server that sends its head at once, one byte of a 100-byte body after 0.9 s, then
    nothing for 5 s (the origin; the server holds the connection open)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
            if stop.wait(0.9):
                return
            conn.sendall(b"a")
            stop.wait(5)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_a_body_stalling_after_a_late_byte_cannot_stretch_the_call_past_its_timeout(stalling_body):
    """docs/runs.md: "A call ends at its tool's timeout however slowly the server answers:
    connecting, each redirect, the headers and the body all count against one deadline."""
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch("GET", stalling_body + "/", hosts=["127.0.0.1"], timeout=1.0, policy=LOOPBACK)
    elapsed = time.monotonic() - started
    assert info.value.code == "http_timeout"
    assert elapsed < 1.4, f"a 1 s call took {elapsed:.2f} s"


def test_name_resolution_counts_against_the_calls_deadline():
    """The deadline of one call covers "connecting, each redirect, the headers and the body"
    (docs/runs.md), and a tool call is given only the time the run has left."""

    def slow_resolver(host: str, port: int) -> list[str]:
        time.sleep(2.0)  # a slow DNS answer
        return ["127.0.0.1"]

    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch("GET", "http://slow.example.test/", hosts=["slow.example.test"], timeout=0.5, resolver=slow_resolver)
    elapsed = time.monotonic() - started
    assert elapsed < 1.2, f"a 0.5 s call took {elapsed:.2f} s (waiting for the resolver)"


def test_a_host_declared_with_its_default_port_is_refused_at_run_time_though_validation_accepts_it():
    """`host_allowed` is documented as the one function by which "Validation and the runtime's
    HTTP tool decide", and `hosts: [api.example.com:443]` with `url: https://api.example.com:443/...`
    validates (validation reads the port with `urlsplit`: 443)."""
    manifest = """apiVersion: foundry/v1
kind: Agent
metadata: {name: pinned, project: p}
spec:
  domain: {name: finance, version: 1}
  model: {provider: scripted, name: scripted-1}
  instructions: x
  tools:
    - name: lookup
      type: http
      description: Look up.
      url: https://api.example.com:443/v1/things
      hosts: ["api.example.com:443"]
"""
    result = validate(manifest, "pinned.yaml")
    assert not [p for p in result.problems if p.code == "http_host_undeclared"], [str(p) for p in result.problems]

    # 192.0.2.1 (TEST-NET-1) is refused as non-public before any connection: reaching the
    # address check proves the declared host was accepted. Nothing is sent anywhere.
    with pytest.raises(FetchError) as info:
        fetch(
            "GET",
            "https://api.example.com:443/v1/things",
            hosts=["api.example.com:443"],
            timeout=2,
            resolver=lambda host, port: ["192.0.2.1"],
        )
    assert info.value.code != "http_host_undeclared", info.value.message


@pytest.mark.parametrize("name", ["scope", "SCOPE", "scope[]", " scope"], ids=["same", "case", "brackets", "space"])
def test_the_model_cannot_override_a_query_parameter_fixed_in_the_declared_url(server, invoice_triage, finance, name):
    """An http tool's URL is the manifest author's: placeholders are URL-quoted and `.`/`..`
    refused so the model cannot "climb out of the declared path" (tools.py); the model's other
    arguments "become the query string", and one a server reads as a parameter the URL fixes is
    refused: `scope` in another case, `scope[]` (PHP and Rack read `?scope=readonly&scope[]=admin`
    as scope=['admin']), ` scope` (PHP drops a name's leading spaces)."""
    server.routes["/v1/search"] = reply(body=b'{"ok": true}')
    tool = {
        "name": "search",
        "type": "http",
        "description": "Search, read-only.",
        "url": server.origin + "/v1/search?scope=readonly",
        "hosts": ["127.0.0.1"],
    }
    manifest = copy.deepcopy(invoice_triage)
    manifest["spec"]["tools"] = [tool]
    manifest["spec"]["approvals"] = {}
    toolbox = Toolbox(manifest, finance, ToolOptions(network=LOOPBACK))
    with pytest.raises(ToolError) as refused:
        toolbox.run(toolbox.get("search"), {"q": "x", name: "admin"}, timeout=2)
    assert refused.value.code == "tool_argument_invalid"
    assert server.requests == []
