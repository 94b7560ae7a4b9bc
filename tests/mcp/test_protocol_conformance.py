"""/mcp and `forge mcp` keep to the protocol where a client relies on it: the capabilities claim
only what the server does (no change events: no `subscriptions/listen`), every 405 names POST as
the one method, an integer argument is what the input schema's "integer" accepts, and the stdio
bridge answers a request it cannot relay instead of dropping it or breaking those after it."""

import json
import os
import subprocess

import httpx2
import jsonschema
import pytest

from tests.forge.conftest import FORGE
from tests.mcp.conftest import mcp_client, mcp_url, tokens, workspace_make  # noqa: F401 - fixture

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
PING = b'{"jsonrpc": "2.0", "id": 99, "method": "ping"}\n'


def _modern(port: int, ws, method: str, params: dict) -> httpx2.Response:
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": META}})
    headers = {
        "Host": f"{ws.slug}.localhost:{port}",
        "Authorization": f"Bearer {ws.tokens['viewer']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    return httpx2.post(mcp_url(port), content=body, headers=headers, timeout=30)


# --- capabilities and methods -------------------------------------------------------------------


def test_the_2026_capabilities_claim_no_notifications_the_server_never_sends(mcp_port, ws):
    """The server publishes no change events: `server/discover` says so, as `initialize` does
    (the SDK derives listChanged and subscribe from serving `subscriptions/listen`)."""
    capabilities = _modern(mcp_port, ws, "server/discover", {}).json()["result"]["capabilities"]
    claimed = {
        "tools.listChanged": capabilities["tools"].get("listChanged"),
        "prompts.listChanged": capabilities["prompts"].get("listChanged"),
        "resources.listChanged": capabilities["resources"].get("listChanged"),
        "resources.subscribe": capabilities["resources"].get("subscribe"),
    }
    assert not any(claimed.values()), claimed


def test_a_listen_request_is_answered_at_once_not_held_open(mcp_port, ws):
    """A `subscriptions/listen` stream was held open (a ping every 15 s) and outlived the
    revocation of its token: the method is not served, and the answer ends the request."""
    params = {"notifications": {"resourcesListChanged": True, "resourceSubscriptions": ["foundry://dis/x/versions/1"]}}
    response = _modern(mcp_port, ws, "subscriptions/listen", params)
    text = response.text
    payload = json.loads(text.split("data:", 1)[1]) if "data:" in text else json.loads(text)
    assert payload["error"]["code"] == -32601, payload


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH", "OPTIONS"])
def test_every_405_names_post_as_the_only_method(mcp_port, ws, method):
    """RFC 9110 §15.5.6: a 405 carries Allow with the methods the resource supports."""
    headers = {
        "Host": f"{ws.slug}.localhost:{mcp_port}",
        "Authorization": f"Bearer {ws.tokens['viewer']}",
        "Accept": "application/json, text/event-stream",
        "Mcp-Session-Id": "0123456789abcdef0123456789abcdef",
    }
    response = httpx2.request(method, mcp_url(mcp_port), headers=headers, timeout=30)
    assert response.status_code == 405
    assert response.headers.get("allow") == "POST", (method, response.headers.get("allow"))
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- integer arguments --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("list_agents", {"page_size": 5.0}),
        ("list_runs", {"page_size": 5.0}),
        ("query_dis", {"domain": "finance", "version": 1.0}),
    ],
)
async def test_an_integer_the_input_schema_accepts_is_taken(mcp_port, ws, tool, arguments):
    """JSON Schema's "integer" is any number with a zero fraction: 5.0 passes a client's check
    against the advertised schema, so the server takes it (and still refuses true, "1", 1.5)."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        schema = next(t.input_schema for t in (await client.list_tools()).tools if t.name == tool)
        jsonschema.validate(arguments, schema)
        result = await client.call_tool(tool, arguments)
        assert not result.is_error, result.content[0].text
        for wrong in (True, "1", 1.5):
            key = next(iter(set(arguments) - {"domain"}))
            refused = await client.call_tool(tool, {**arguments, key: wrong})
            assert refused.is_error, (key, wrong)


# --- the stdio bridge ---------------------------------------------------------------------------


def _bridge(port: int, slug: str, token: str, lines: bytes) -> list[dict]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    done = subprocess.run(
        [str(FORGE), "mcp", "--url", f"http://{slug}.localhost:{port}/mcp"],
        input=lines,
        env={**clean, "FOUNDRY_TOKEN": token},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("request_id", ["null", "1.5", "true"])
def test_the_bridge_answers_a_request_whose_id_no_server_takes(mcp_port, fresh_tenant, tokens, request_id):  # noqa: F811
    """JSON-RPC 2.0: a message with an `id` member is a request and gets an answer (-32600, id
    null, as /mcp answers it); the SDK's reader took it for
    a notification, and its sender waited forever."""
    line = b'{"jsonrpc": "2.0", "id": %s, "method": "ping"}\n' % request_id.encode()
    answers = _bridge(mcp_port, fresh_tenant.slug, tokens["viewer"], line + PING)
    assert {"jsonrpc": "2.0", "id": 99, "result": {}} in answers
    refused = [a for a in answers if a.get("id") is None]
    assert refused and refused[0]["error"]["code"] == -32600, answers


def test_one_message_with_an_unsendable_version_does_not_break_the_requests_after_it(mcp_port, fresh_tenant, tokens):  # noqa: F811
    """A protocol version with CR/LF cannot be a header value: that request is answered -32602
    by the bridge, and the ones after it still reach the server (the SDK's transport kept the
    last version for every later request, and each failed "Cannot reach")."""
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "2026-07-28\r\nX-Injected: 1"}
    params = {"name": "list_agents", "arguments": {}, "_meta": meta}
    bad = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    answers = _bridge(mcp_port, fresh_tenant.slug, tokens["viewer"], json.dumps(bad).encode() + b"\n" + PING)
    by_id = {a.get("id"): a for a in answers}
    assert by_id[99] == {"jsonrpc": "2.0", "id": 99, "result": {}}, by_id[99]
    assert by_id[1]["error"]["code"] == -32602, by_id[1]


def test_the_bridge_answers_a_request_whose_params_are_no_object_at_its_id(mcp_port, fresh_tenant, tokens):  # noqa: F811
    """JSON-RPC 2.0 §5: the error answers at the request's id (null only when it cannot be read);
    the SDK's reader refused the line as no message, id null, and the client's request 4 was never
    resolved. The next request is relayed."""
    line = b'{"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": [1]}\n'
    answers = _bridge(mcp_port, fresh_tenant.slug, tokens["viewer"], line + PING)
    assert {"jsonrpc": "2.0", "id": 99, "result": {}} in answers, answers
    refused = [a for a in answers if a.get("id") == 4]
    assert refused and refused[0]["error"]["code"] == -32602, answers
