"""Hostile input to /mcp (docs/mcp.md "Errors and limits"): every refusal is a tool error or a
JSON-RPC error with a stable code, bounded in size, with no raw dump of the server's internals."""

import json
import re

import httpx2
import pytest

from tests.mcp.conftest import mcp_url


def post(port: int, ws, body) -> httpx2.Response:
    headers = {
        "Host": f"{ws.slug}.localhost:{port}",
        "Authorization": f"Bearer {ws.tokens['developer']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    return httpx2.post(mcp_url(port), content=json.dumps(body), headers=headers, timeout=60)


def rpc_message(response: httpx2.Response) -> dict:
    if response.headers["content-type"].startswith("application/json"):
        return response.json()
    events = [line.removeprefix("data:") for line in response.text.splitlines() if line.startswith("data:")]
    return json.loads(events[-1])


def call(port: int, ws, tool: str, arguments: dict) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    return rpc_message(post(port, ws, body))


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("list_agents", {"page_size": -5}),
        ("get_agent", {}),
        ("deploy_agent", {"name": "invoice-triage", "version": "1"}),
        ("get_usage", {"group_by": "weekday"}),
    ],
    ids=["negative_page_size", "missing_required", "wrong_type", "unknown_enum_value"],
)
def test_an_argument_that_misses_the_schema_is_a_coded_tool_error_not_a_pydantic_dump(mcp_port, ws, tool, arguments):
    """docs/mcp.md: "A tool refusal is a tool result with isError: true and one text item
    `Error executing tool <tool>: <code>: <message>`", and arguments that miss the input schema
    are tool errors too, whose text names the argument (`argument_invalid`) — not pydantic's
    ValidationError as is ("1 validation error for list_agentsArguments ... input_value=...
    https://errors.pydantic.dev/..."): no stable code, the server's model names and library
    version."""
    result = call(mcp_port, ws, tool, arguments)["result"]
    assert result["isError"] is True
    text = result["content"][0]["text"]
    detail = text.removeprefix(f"Error executing tool {tool}: ")
    assert re.match(r"[a-z_]+: ", detail), text
    assert "pydantic" not in text and f"{tool}Arguments" not in text, text


def test_a_message_that_is_no_json_rpc_message_is_refused_without_a_pydantic_dump(mcp_port, ws):
    """docs/mcp.md (before the SDK reads a request): JSON that is not a JSON-RPC message, a
    batch array on the 2025 protocols included, is 400 with JSON-RPC -32600, with a plain message
    saying what is wrong (as for an id that is no string or integer) — not pydantic's dump of the
    SDK's union model, the caller's own body echoed back in it."""
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    response = post(mcp_port, ws, batch)
    assert response.status_code == 400
    error = rpc_message(response)["error"]
    assert error["code"] == -32600
    assert "pydantic" not in error["message"] and "JSONRPCRequest" not in error["message"], error["message"]


def test_a_resource_refusal_does_not_echo_a_megabyte_uri(mcp_port, ws):
    """A refused resources/read names the URI, but bounded, as the server's own refusals do
    (foundry/mcp/context.py run_resource: `uri[:200]`; unknown prompts `name[:200]`). The SDK
    sent a 1 MB URI back whole in the message and again in data.uri, and logged it whole."""
    uri = "foundry://nowhere/" + "a" * 1_000_000  # matches no template: the SDK's "Unknown resource"
    response = post(mcp_port, ws, {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}})
    error = rpc_message(response)["error"]
    assert error["code"] == -32602
    assert len(response.content) < 10_000, (len(response.content), error["message"][:120])


def test_an_unknown_tool_name_is_not_echoed_whole(mcp_port, ws):
    """An unknown tool name is a protocol error (docs/mcp.md), "Unknown tool: <name>". The name is
    caller text of any length (up to the 4 MiB body): the server bounds what it echoes elsewhere
    (field_unknown names keys `[:60]`, unknown prompts `[:200]`): a 1 MB tool name is not sent back whole."""
    error = call(mcp_port, ws, "x" * 1_000_000, {})["error"]
    assert error["code"] == -32602
    assert len(error["message"]) < 1_000, len(error["message"])
