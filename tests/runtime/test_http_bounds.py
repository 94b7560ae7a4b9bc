"""The http tool's bounds: a gzip body ends where it ends, any nesting of a JSON answer is an
answer, and the URL's own query parameters are the manifest's in a body too."""

import copy
import gzip
import socket
import sys
import threading

import pytest

import foundry.runtime.tools as tools_module
from foundry.runtime.network import FetchResult, NetworkPolicy, fetch
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import EXAMPLES, Server, load, reply

LOOPBACK = NetworkPolicy(allow_private=True)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def trailing_gzip():
    """A server answering with a valid 30-byte gzip member (Content-Encoding: gzip, no
    Content-Length: the body ends when the connection closes) followed by 16 MiB of further
    bytes; yields (origin, counter) where counter["sent"] is how much the client accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    counter = {"sent": 0}
    done = threading.Event()

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                b"Connection: close\r\n\r\n" + gzip.compress(b'{"ok": true}')
            )
            junk = b"\0" * (1024 * 1024)
            try:
                for _ in range(16):
                    conn.sendall(junk)
                    counter["sent"] += len(junk)
            except OSError:
                pass
        done.set()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", counter, done
    listener.close()


def test_bytes_after_the_end_of_a_gzip_body_are_not_read_and_kept_without_bound(trailing_gzip):
    """Bytes after the gzip member's end decode to nothing: the body is whole there and nothing
    after it is read (read on, a declared host held the worker's memory and CPU until the tool's
    timeout). Socket buffers hold ~3 MiB of the 16 MiB sent."""
    origin, counter, done = trailing_gzip
    policy = NetworkPolicy(allow_private=True, max_response_bytes=64 * 1024)
    result = fetch("GET", origin + "/", hosts=["127.0.0.1"], timeout=10, policy=policy)
    assert result.body == b'{"ok": true}'
    done.wait(5)
    assert counter["sent"] < 8 * 1024 * 1024, f"the client read {counter['sent']:,} bytes for a 64 KiB bound"


def _registry_toolbox(invoice_triage_tools=None, options=None):
    manifest = load(EXAMPLES / "agents" / "invoice-triage.yaml")
    if invoice_triage_tools is not None:
        manifest = copy.deepcopy(manifest)
        manifest["spec"]["tools"] = invoice_triage_tools
        manifest["spec"]["approvals"] = {}
    return Toolbox(manifest, load(EXAMPLES / "domains" / "finance.yaml"), options)


def test_a_deeply_nested_json_answer_is_never_an_uncaught_recursion_error(monkeypatch):
    """Writing a parsed answer back needs a little more stack than parsing it: at every depth the
    tool gives a result or a ToolError, never a RecursionError (a run's internal_error)."""
    toolbox = _registry_toolbox()
    tool = toolbox.get("vendor_registry")
    depth = {"n": 0}

    def answer(*args, **kwargs):
        n = depth["n"]
        return FetchResult(200, "https://registry.example.com/", "application/json", b"[" * n + b"]" * n)

    monkeypatch.setattr(tools_module, "fetch", answer)
    limit = sys.getrecursionlimit()
    escaped = []
    for n in range(max(1, limit - 400), limit + 50):
        depth["n"] = n
        try:
            toolbox.run(tool, {"id": "1"}, timeout=5)
        except ToolError:
            pass
        except RecursionError:
            escaped.append(n)
    assert escaped == [], f"RecursionError escaped Toolbox.run at nesting depth(s) {escaped}"


def test_a_post_tool_refuses_an_argument_naming_a_query_parameter_fixed_in_its_url(server):
    """docs/runs.md: a call whose arguments name one of the URL's query parameters is refused
    (tool_argument_invalid) — in a POST's body too, which servers that merge body and query with
    the body winning (Laravel's `$request->input()`, PHP's $_REQUEST) would read as scope=admin."""
    server.routes["/v1/orders"] = reply(body=b'{"ok": true}')
    tool = {
        "name": "order",
        "type": "http",
        "description": "Create an order, read-only scope.",
        "method": "POST",
        "url": server.origin + "/v1/orders?scope=readonly",
        "hosts": ["127.0.0.1"],
    }
    toolbox = _registry_toolbox([tool], ToolOptions(network=LOOPBACK))
    with pytest.raises(ToolError) as refused:
        toolbox.run(toolbox.get("order"), {"item": "x", "scope": "admin"}, timeout=2)
    assert refused.value.code == "tool_argument_invalid"
    assert server.requests == []
