"""The MCP surface: tools with input and output schemas, resources, and no crash on bad input."""

import json

import httpx2
import pytest
from mcp import MCPError

from tests.mcp.conftest import mcp_client, mcp_url, tool_error
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio

TOOLS = {
    "list_agents",
    "get_agent",
    "validate_manifest",
    "deploy_agent",
    "run_agent",
    "get_run",
    "list_runs",
    "approve_run",
    "reject_run",
    "query_dis",
    "get_usage",
}


def raw(port: int, ws, body: bytes | str, **headers) -> httpx2.Response:
    """One POST to /mcp without the SDK: the bytes as given."""
    base = {
        "Host": f"{ws.slug}.localhost:{port}",
        "Authorization": f"Bearer {ws.tokens['viewer']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    return httpx2.post(mcp_url(port), content=body, headers={**base, **headers}, timeout=30)


async def test_it_initializes_and_lists_every_tool_with_an_input_and_an_output_schema(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        assert client.server_info.name == "foundry"
        assert "approve_run" in client.instructions
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    for tool in tools:
        assert tool.description, tool.name
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
    by_name = {t.name: t for t in tools}
    assert by_name["get_usage"].annotations.read_only_hint is True
    assert by_name["deploy_agent"].annotations.read_only_hint is False
    assert by_name["run_agent"].input_schema["properties"]["wait_seconds"]["maximum"] == 60
    assert by_name["get_run"].input_schema["properties"]["run_id"]["format"] == "uuid"


async def test_it_lists_resource_templates_and_the_latest_version_of_each_document(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        templates = (await client.list_resource_templates()).resource_templates
        listed = await client.list_resources()
    assert {(t.uri_template, t.mime_type) for t in templates} == {
        ("foundry://agents/{name}/versions/{n}", "application/yaml"),
        ("foundry://dis/{domain}/versions/{n}", "application/yaml"),
    }
    assert [(r.uri, r.mime_type) for r in listed.resources] == [
        ("foundry://dis/finance/versions/1", "application/yaml"),
        ("foundry://agents/invoice-triage/versions/1", "application/yaml"),
    ]
    assert listed.next_cursor is None


async def test_it_reads_a_version_as_published_and_refuses_what_is_not_there(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        agent = (await client.read_resource("foundry://agents/invoice-triage/versions/1")).contents[0]
        domain = (await client.read_resource("foundry://dis/finance/versions/1")).contents[0]
        refused = {}
        for uri in (
            "foundry://agents/invoice-triage/versions/2",
            "foundry://agents/invoice-triage/versions/x",
            "foundry://agents/nobody/versions/1",
            "foundry://dis/finance/versions/0",
            "foundry://dis/%2E%2E/versions/1",
            "foundry://elsewhere/1",
        ):
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            refused[uri] = (caught.value.code, (caught.value.data or {}).get("code"))
    assert (agent.text, agent.mime_type) == (TRIAGE, "application/yaml")
    assert (domain.text, domain.mime_type) == (FINANCE, "application/yaml")
    assert refused == {
        "foundry://agents/invoice-triage/versions/2": (-32602, "version_not_found"),
        "foundry://agents/invoice-triage/versions/x": (-32602, "version_not_found"),
        "foundry://agents/nobody/versions/1": (-32602, "agent_not_found"),
        "foundry://dis/finance/versions/0": (-32602, "version_not_found"),
        "foundry://dis/%2E%2E/versions/1": (-32602, None),
        "foundry://elsewhere/1": (-32602, None),
    }


async def test_bad_arguments_are_tool_errors_and_unknown_tools_protocol_errors(mcp_port, ws):
    """MCP (Tools, Error Handling): an unknown tool is a protocol error (-32602), arguments that
    miss the schema a tool execution error the model can correct."""
    calls = [
        ("list_agents", {"page_size": 0}),
        ("list_agents", {"page_size": "many"}),
        ("list_agents", {"filter": 7}),
        ("get_run", {"run_id": "not-a-uuid"}),
        ("get_run", {}),
        ("run_agent", {"agent": "invoice-triage", "input": "x", "wait_seconds": 61}),
        ("query_dis", {"domain": "finance", "version": -1}),
        ("get_usage", {"group_by": "weekday"}),
        ("get_usage", {"start": "yesterday"}),
        ("validate_manifest", {"content": "x" * (1024 * 1024 + 1)}),
    ]
    async with mcp_client(mcp_port, ws.slug, ws.tokens["developer"]) as client:
        errors = []
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert result.is_error, (name, arguments, result)
            assert result.structured_content is None
            errors.append(result.content[0].text)
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("nope", {})
        # The session goes on.
        assert not (await client.call_tool("list_agents", {})).is_error
    assert (unknown.value.code, unknown.value.message, unknown.value.data) == (
        -32602,
        "Unknown tool: nope",
        {"code": "tool_not_found"},
    )
    # A wrong argument is named, for the model to correct it.
    assert (
        errors[0]
        == "Error executing tool list_agents: argument_invalid: page_size: Input should be greater than or equal to 1."
    )
    assert errors[3].startswith("Error executing tool get_run: argument_invalid: run_id: Input should be a valid UUID")


async def test_a_refused_filter_names_its_code_and_position(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        result = await client.call_tool("list_runs", {"filter": "status = "})
        ordered = await client.call_tool("list_runs", {"order_by": "input"})
    assert tool_error(result) == "syntax_error: Unexpected 'the end' at position 9."
    assert tool_error(ordered).startswith("unknown_order_field: Cannot order by 'input'")


async def test_a_body_above_the_limit_is_refused_with_413(mcp_port, ws):
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "validate_manifest", "arguments": {"content": "x" * (5 * 1024 * 1024)}},
        }
    )
    response = raw(mcp_port, ws, body)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, -32700),
        ("", 400, -32700),
        # Not a JSON-RPC request object: -32600 (JSON-RPC 2.0, 5.1), where the SDK answers -32602.
        ('{"jsonrpc": "2.0"}', 400, -32600),
        ("[]", 400, -32600),
        ('{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}', 400, -32600),
        ('"ping"', 400, -32600),
        # A request whose params are no object: -32602.
        ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "x"}', 400, -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": null}', 400, -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "no/such/method", "params": {}}', 200, -32601),
    ],
)
def test_malformed_json_rpc_gets_a_json_rpc_error_not_a_500(mcp_port, ws, body, status, code):
    response = raw(mcp_port, ws, body)
    assert response.status_code == status
    assert rpc_message(response)["error"]["code"] == code


def rpc_message(response: httpx2.Response) -> dict:
    """The JSON-RPC message of a response: a JSON body, or the last event of an SSE stream."""
    if response.headers["content-type"].startswith("application/json"):
        return response.json()
    events = [line.removeprefix("data:") for line in response.text.splitlines() if line.startswith("data:")]
    return json.loads(events[-1])


def test_a_request_whose_params_are_no_object_is_answered_at_its_id(mcp_port, ws):
    """JSON-RPC 2.0 §5: an error answers at the request's id, null only when the id cannot be read;
    MCP's params are always an object, so an array is -32602 at id 4 (the SDK answered id null)."""
    response = raw(mcp_port, ws, '{"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": [1]}')
    answer = rpc_message(response)
    assert (response.status_code, answer["id"], answer["error"]["code"]) == (400, 4, -32602), answer


def test_an_unknown_method_is_echoed_in_part(mcp_port, ws):
    """-32601 names the method it does not know by its first 200 characters, as every refusal of
    a name the caller gave does (docs/mcp.md): not a 100,000-character method sent back whole."""
    response = raw(mcp_port, ws, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "x" * 100_000}))
    answer = rpc_message(response)
    assert (response.status_code, answer["id"], answer["error"]["code"]) == (200, 7, -32601), answer
    assert answer["error"]["data"] == "x" * 200


@pytest.mark.parametrize("method", ["tools/list", "prompts/list", "resources/templates/list"])
def test_a_list_of_one_page_refuses_a_cursor_it_never_gave(mcp_port, ws, method):
    """MCP (Utilities, Pagination): an invalid cursor SHOULD be -32602. Tools, prompts and
    resource templates are one page each, with no nextCursor: any cursor is one the server never
    gave (the SDK answered the first page as if it had found the client's place)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 5, "method": method, "params": {"cursor": "eyJwYWdlIjogMn0="}})
    refused = rpc_message(raw(mcp_port, ws, body, **{"MCP-Protocol-Version": "2025-06-18"}))
    assert (refused["id"], refused["error"]["code"], refused["error"]["data"]) == (
        5,
        -32602,
        {"code": "invalid_page_token"},
    ), refused
    listed = rpc_message(raw(mcp_port, ws, json.dumps({"jsonrpc": "2.0", "id": 6, "method": method})))
    assert "result" in listed and "nextCursor" not in listed["result"], listed


@pytest.mark.parametrize("version", ["bogus", "1999-01-01"])
def test_an_unsupported_protocol_version_header_is_refused_by_name(mcp_port, ws, version):
    """MCP (Transports, Protocol Version Header): an invalid or unsupported MCP-Protocol-Version
    is 400; the answer names the header and the versions this server speaks (the SDK's complained
    about a `params._meta` the request never needed)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 8, "method": "tools/list"})
    response = raw(mcp_port, ws, body, **{"MCP-Protocol-Version": version})
    assert response.status_code == 400
    error = rpc_message(response)["error"]
    assert "MCP-Protocol-Version" in error["message"] and "2025-11-25" in error["message"], error
