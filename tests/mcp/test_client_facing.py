"""Two things a client sees of /mcp: integer arguments' bounds, published as JSON Schema's
minimum/maximum (not pydantic's ge/le, which no client reads), and a lone surrogate in a message,
refused as `json_text_invalid` (not as the SDK's "unexpected end of hex escape" parse error)."""

import json

import pytest

from tests.mcp.conftest import mcp_client
from tests.mcp.test_protocol import raw

pytestmark = pytest.mark.anyio


# (tool, argument, minimum, maximum) — docs/mcp.md: "Every tool has a typed input schema (bounds
# included)"; page_size 1 to 1000, versions and steps 1..2**31-1.
BOUNDED_INTEGERS = [
    ("list_agents", "page_size", 1, 1000),
    ("list_runs", "page_size", 1, 1000),
    ("deploy_agent", "version", 1, 2**31 - 1),
    ("query_dis", "version", 1, 2**31 - 1),
    ("approve_run", "step", 1, 2**31 - 1),
    ("reject_run", "step", 1, 2**31 - 1),
]


async def test_integer_bounds_are_published_as_json_schema_minimum_and_maximum(mcp_port, ws):
    """docs/mcp.md: every tool has a typed input schema, bounds included."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    wrong = {}
    for tool, argument, low, high in BOUNDED_INTEGERS:
        schema = tools[tool].input_schema["properties"][argument]
        integer = next((s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer"), {})
        bounds = (integer.get("minimum", schema.get("minimum")), integer.get("maximum", schema.get("maximum")))
        if bounds != (low, high) or "ge" in schema or "le" in schema:
            wrong[f"{tool}.{argument}"] = schema
    assert not wrong, wrong


@pytest.mark.parametrize(
    "params",
    [
        {"name": "get_agent", "arguments": {"name": "invoice\ud800triage"}},
        {"name": "get_agent", "arguments": {"name\udfff": "invoice-triage"}},  # in a key
        {"name": "get_agent\ud800", "arguments": {}},
    ],
)
def test_a_lone_surrogate_in_a_message_is_json_text_invalid_before_any_tool_runs(mcp_port, ws, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params})
    response = raw(mcp_port, ws, body, **{"MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["id"] == 7 and answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith("json_text_invalid: ")


def test_a_nul_in_an_argument_is_still_the_tools_json_text_invalid(mcp_port, ws):
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get_agent", "arguments": {"name": "a\u0000b"}},
        }
    )
    response = raw(mcp_port, ws, body, **{"MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 200, response.text
    data = next(line[5:] for line in response.text.splitlines() if line.startswith("data:"))
    result = json.loads(data)["result"]
    assert result["isError"] is True
    assert "json_text_invalid" in result["content"][0]["text"]


@pytest.mark.parametrize(
    ("body", "answered_id"),
    [
        ('{"jsonrpc": "2.0", "id": 7, "method": "tools/call",'
         ' "params": {"name": "get_agent", "name": "list_agents"}}', 7),
        ('{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_agent",'
         ' "arguments": {"name": "a", "name": "b"}}}', 7),
        ('{"jsonrpc": "2.0", "id": 7, "id": 8, "method": "tools/list"}', None),
    ],
    ids=["tool", "argument", "id"],
)  # fmt: skip
def test_a_message_naming_a_key_twice_is_json_duplicate_key_before_any_tool_runs(mcp_port, ws, body, answered_id):
    """The SDK reads a key named twice as its last value; the gateway refuses the message as the
    API refuses such a body (docs/mcp.md, `json_duplicate_key`); an id named twice is no id."""
    response = raw(mcp_port, ws, body, **{"MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["id"] == answered_id and answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith("json_duplicate_key: ")


def test_a_tool_argument_called_id_named_twice_still_answers_the_message_id(mcp_port, ws):
    """Only the message's own `id` named twice makes its id unclear: a tool argument that happens
    to be called `id` named twice was answered with id null, and the client's request waited for
    ever (JSON-RPC 2.0: null only when the id cannot be told)."""
    body = (
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_run",'
        ' "arguments": {"id": "a", "id": "b"}}}'
    )
    answer = raw(mcp_port, ws, body, **{"MCP-Protocol-Version": "2025-06-18"}).json()
    assert answer["error"]["message"].startswith("json_duplicate_key: ") and answer["id"] == 7


def test_a_message_id_named_twice_has_no_id_whatever_else_is_named_twice(mcp_port, ws):
    """The parser closes inner objects first: an inner key named twice was the one reported, and
    the message's own id named twice was answered with its last value (8), which a reader keeping
    the first (7) never sent."""
    body = (
        '{"jsonrpc": "2.0", "id": 7, "id": 8, "method": "tools/call",'
        ' "params": {"name": "get_agent", "name": "list_agents"}}'
    )
    answer = raw(mcp_port, ws, body, **{"MCP-Protocol-Version": "2025-06-18"}).json()
    assert answer["error"]["message"].startswith("json_duplicate_key: ") and answer["id"] is None
