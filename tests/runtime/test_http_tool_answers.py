"""The agent `http` tool (foundry/runtime/tools.py, network.py): odd answers, null arguments and
cookies across redirects."""

import json

import pytest

from foundry.runtime.network import NetworkPolicy, fetch
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import EXAMPLES, Server, agent, load, reply

LOOPBACK = NetworkPolicy(allow_private=True)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _toolbox(server: Server, path: str) -> Toolbox:
    tool = {
        "name": "lookup",
        "type": "http",
        "description": "Lookup.",
        "url": server.origin + path,
        "hosts": ["127.0.0.1"],
    }
    manifest = agent(load(EXAMPLES / "agents" / "invoice-triage.yaml"), tools=[tool], approvals={})
    return Toolbox(manifest, load(EXAMPLES / "domains" / "finance.yaml"), ToolOptions(network=LOOPBACK))


def test_a_deeply_nested_json_answer_is_a_tool_result_not_an_unhandled_recursion_error(server):
    """A JSON answer nested deeper than Python parses is passed to the model as text, like any
    body that is not JSON: a remote service cannot end a run as an internal error."""
    server.routes["/v1/deep"] = reply(body=b"[" * 50_000 + b"]" * 50_000)
    toolbox = _toolbox(server, "/v1/deep")
    try:
        result = toolbox.run(toolbox.get("lookup"), {}, timeout=5)
    except ToolError:
        return  # a tool error the model is told about: fine
    assert json.loads(result)["status"] == 200


def test_a_null_query_argument_is_not_sent_as_the_python_word_none(server):
    """A null argument of a GET is no query parameter (not `?status=None`)."""
    server.routes["/v1/customers"] = reply(body=b"{}")
    toolbox = _toolbox(server, "/v1/customers")
    try:
        toolbox.run(toolbox.get("lookup"), {"name": "ACME", "status": None}, timeout=5)
    except ToolError:
        return  # refused: fine
    assert "None" not in server.requests[-1]["query"], server.requests[-1]["query"]


def test_a_cookie_set_by_one_declared_host_is_not_sent_to_another_after_a_redirect(server):
    """No cookie follows a redirect: one set by a declared host is not sent to another declared
    host behind the same address, as no credential of one host follows a redirect to another."""
    received = []

    def first(handler):
        handler.send_response(302)
        handler.send_header("Location", f"http://b.test:{server.port}/b")
        handler.send_header("Set-Cookie", "sid=session-of-a; Path=/; HttpOnly")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def second(handler):
        received.append(handler.headers.get("Cookie"))
        reply(body=b"{}")(handler)

    server.routes["/a"] = first
    server.routes["/b"] = second
    result = fetch(
        "GET",
        f"http://a.test:{server.port}/a",
        hosts=["a.test", "b.test"],
        timeout=5,
        policy=LOOPBACK,
        resolver=lambda host, port: ["127.0.0.1"],
    )
    assert result.status == 200 and len(received) == 1
    assert received[0] is None, f"b.test received a.test's cookie: {received[0]!r}"
