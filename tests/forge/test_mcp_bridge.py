"""`forge mcp`: the installed console script, started by the MCP SDK's own stdio client, relaying to
the tenant's /mcp endpoint served by uvicorn (tests/mcp/conftest.py)."""

import json
import os
import subprocess
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from django_tenants.utils import schema_context
from mcp import Client, MCPError
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import jsonrpc_message_adapter

from apps.tokens.services import token_issue, token_revoke
from foundry.forge.mcp_bridge import _Conversation, endpoint_url
from tests.conftest import free_port
from tests.forge.conftest import FINANCE, FORGE, TRIAGE, forge
from tests.mcp.conftest import tokens  # noqa: F401 - fixture (mcp_port is in tests/conftest.py)

REFUSED = "The token is not valid, expired or revoked."


def workspace_endpoint(port: int, slug: str) -> str:
    return f"http://{slug}.localhost:{port}/mcp"


def bridge_fed(endpoint: str, token: str, lines: bytes) -> subprocess.CompletedProcess:
    """`forge mcp` given `lines` on stdin (no FOUNDRY_* setting of this environment), to the end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    return subprocess.run(
        [str(FORGE), "mcp", "--url", endpoint],
        input=lines,
        env={**clean, "FOUNDRY_TOKEN": token},
        capture_output=True,
        timeout=60,
    )


@asynccontextmanager
async def bridged(endpoint: str, token: str, stderr, *, mode: str = "auto"):
    """An SDK client on stdio, talking to `forge mcp` as a desktop client does."""
    params = StdioServerParameters(command=str(FORGE), args=["mcp", "--url", endpoint], env={"FOUNDRY_TOKEN": token})
    async with Client(stdio_client(params, errlog=stderr), mode=mode) as client:
        yield client


def publish(port: int, slug: str, token: str, kind: str, content: str) -> None:
    """Straight to the REST API of the same server, not through forge."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/{kind}s",
        headers={"Host": f"{slug}.localhost:{port}", "Authorization": f"Bearer {token}"},
        json={"content": content},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("mode", "version"),
    [("legacy", "2025-11-25"), ("auto", "2026-07-28")],
    ids=["initialize-handshake", "per-request-envelope"],
)
@pytest.mark.anyio
async def test_it_relays_every_call_and_tool_errors(mcp_port, fresh_tenant, tokens, tmp_path, mode, version):  # noqa: F811
    publish(mcp_port, fresh_tenant.slug, tokens["admin"], "domain", FINANCE)
    publish(mcp_port, fresh_tenant.slug, tokens["admin"], "agent", TRIAGE)
    endpoint = workspace_endpoint(mcp_port, fresh_tenant.slug)
    with (tmp_path / "stderr").open("w+") as stderr:
        async with bridged(endpoint, tokens["viewer"], stderr, mode=mode) as client:
            assert client.protocol_version == version
            assert client.server_info.name == "foundry"
            listed = await client.list_tools()
            assert {"list_agents", "get_agent", "validate_manifest"} <= {tool.name for tool in listed.tools}

            agents = await client.call_tool("list_agents", {})
            assert not agents.is_error, agents
            assert [agent["name"] for agent in agents.structured_content["agents"]] == ["triage"]

            checked = await client.call_tool(
                "validate_manifest", {"content": TRIAGE.replace("version: 1", "version: 9")}
            )
            assert not checked.is_error, checked
            assert checked.structured_content["valid"] is False
            assert [problem["code"] for problem in checked.structured_content["problems"]] == ["dis_version_not_found"]

            missing = await client.call_tool("get_agent", {"name": "nope"})
            assert missing.is_error
            assert "not_found" in missing.content[0].text
        stderr.seek(0)
        assert stderr.read() == ""


@pytest.fixture
def bridge_token(fresh_tenant, django_db_blocker):
    """A viewer token, and how to revoke it (from a thread: the test runs in an event loop)."""
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        issued = token_issue(actor="test", name="bridge", role="viewer", scopes=["read"])

    def revoke() -> None:
        with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
            token_revoke(actor="test", token=issued.token)

    return issued.plaintext, revoke


@pytest.mark.anyio
async def test_it_answers_a_revoked_token_with_the_reason_and_keeps_serving(
    mcp_port,
    fresh_tenant,
    bridge_token,
    tmp_path,
):
    token, revoke = bridge_token
    endpoint = workspace_endpoint(mcp_port, fresh_tenant.slug)
    with (tmp_path / "stderr").open("w+") as stderr:
        async with bridged(endpoint, token, stderr, mode="legacy") as client:
            await client.list_tools()
            await anyio.to_thread.run_sync(revoke)
            for _ in range(2):  # the bridge is still there to answer the second call
                with pytest.raises(MCPError) as refused:
                    await client.call_tool("list_agents", {})
                assert refused.value.error.message == f"{endpoint} refused the token: {REFUSED}"
                assert refused.value.error.data == {"reason": "unauthenticated", "status": 401}
        stderr.seek(0)
        assert stderr.read() == f"forge mcp: {endpoint} refused the token: {REFUSED}\n" * 2


def test_a_line_that_is_not_json_rpc_is_answered_with_id_null(mcp_port, fresh_tenant, tokens):  # noqa: F811
    lines = b'not json\n{"jsonrpc": "2.0", "method": 7}\n{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n'
    done = bridge_fed(workspace_endpoint(mcp_port, fresh_tenant.slug), tokens["viewer"], lines)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error: the line is not JSON."}},
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "Invalid request: the line is not a JSON-RPC message."},
        },
        {"jsonrpc": "2.0", "id": 1, "result": {}},
    ]
    assert done.stderr.decode() == "forge mcp: ignored a line on stdin that is not a JSON-RPC message\n" * 2


def test_a_refused_token_stops_it_at_once_with_the_reason(mcp_port, fresh_tenant):
    endpoint = workspace_endpoint(mcp_port, fresh_tenant.slug)
    ran = forge("mcp", "--url", endpoint, env={"FOUNDRY_TOKEN": "af_000000000000_wrong"})
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"forge: error: {endpoint} refused the token: {REFUSED}\n"


def test_a_token_of_another_workspace_is_refused(mcp_port, tokens):  # noqa: F811
    endpoint = workspace_endpoint(mcp_port, "acme")
    ran = forge("mcp", "--url", endpoint, "--token", tokens["owner"])
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"forge: error: {endpoint} refused the token: {REFUSED}\n"


def test_an_unknown_workspace_is_said(mcp_port, tokens):  # noqa: F811
    endpoint = workspace_endpoint(mcp_port, "nosuchworkspace")
    ran = forge("mcp", "--url", endpoint, "--token", tokens["owner"])
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"forge: error: {endpoint}: No workspace is served at this address.\n"


def test_a_url_that_is_not_an_mcp_endpoint_is_said(mcp_port, tokens):  # noqa: F811
    endpoint = f"http://acme.localhost:{mcp_port}/api/v1/mcp"
    ran = forge("mcp", "--url", endpoint, "--token", tokens["owner"])
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"forge: error: {endpoint}: There is nothing at this address.\n"


def test_an_unreachable_server_is_said():
    endpoint = f"http://127.0.0.1:{free_port()}/mcp"
    ran = forge("mcp", "--url", endpoint, "--token", "af_t")
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == f"forge: error: Cannot reach {endpoint}: All connection attempts failed.\n"


def test_it_says_which_setting_is_missing():
    ran = forge("mcp", "--url", "https://acme.example/mcp")
    assert (ran.code, ran.out, ran.err) == (
        2,
        "",
        "forge: error: Bridging MCP needs an API token: --token or FOUNDRY_TOKEN.\n",
    )
    ran = forge("mcp", env={"FOUNDRY_TOKEN": "af_t"})
    assert (ran.code, ran.out, ran.err) == (2, "", "forge: error: Bridging MCP needs a server: --url or FOUNDRY_URL.\n")


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://acme.example/mcp", "https://acme.example/mcp"),
        ("https://acme.example/mcp/", "https://acme.example/mcp"),
        ("https://acme.example", "https://acme.example/mcp"),
        ("https://acme.example/api/v1/", "https://acme.example/mcp"),  # the FOUNDRY_URL of the other commands
        ("http://acme.localhost:8000", "http://acme.localhost:8000/mcp"),
    ],
)
def test_it_takes_the_endpoint_or_the_tenant_url(url, endpoint):
    assert endpoint_url(url) == endpoint


def _message(document: dict):
    return jsonrpc_message_adapter.validate_python(document)


def test_it_sends_the_negotiated_version_after_the_handshake():
    conversation = _Conversation()
    assert conversation.sent(_message({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})) is None
    conversation.received(_message({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18"}}))
    initialized = _message({"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = _message({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_agents"}})
    assert conversation.sent(initialized) == {"mcp-protocol-version": "2025-06-18"}
    assert conversation.sent(call) == {"mcp-protocol-version": "2025-06-18"}


def test_it_mirrors_the_per_request_envelope_into_headers():
    conversation = _Conversation()
    meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    conversation.sent(_message({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": meta}))
    region = {"type": "object", "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}
    tools = [{"name": "find", "inputSchema": region}, {"name": "list_agents", "inputSchema": {"type": "object"}}]
    conversation.received(_message({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}))
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {**meta, "name": "find"}}
    call["params"]["arguments"] = {"region": "eu-west"}
    assert conversation.sent(_message(call)) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "find",
        "Mcp-Param-Region": "eu-west",
    }
    read = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {**meta, "uri": "foundry://agents"}}
    assert conversation.sent(_message(read)) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "resources/read",
        "mcp-name": "foundry://agents",
    }


def test_a_request_holding_a_lone_surrogate_is_answered_at_its_id(mcp_port, fresh_tenant, tokens):  # noqa: F811
    """The SDK's reader cannot parse it and would answer id null, leaving its sender waiting:
    the bridge answers it -32602 at its id, as the gateway does; the next request is relayed."""
    lines = (
        b'{"jsonrpc": "2.0", "id": 5, "method": "tools/call",'
        b' "params": {"name": "get_run", "arguments": {"x": "\\ud800"}}}\n'
        b'{"jsonrpc": "2.0", "id": "\\udfff", "method": "ping"}\n'
        b'{"jsonrpc": "2.0", "id": 6, "method": "ping"}\n'
    )
    done = bridge_fed(workspace_endpoint(mcp_port, fresh_tenant.slug), tokens["viewer"], lines)
    assert done.returncode == 0, done.stderr
    refused = "json_text_invalid: Text may not contain lone surrogates (an unpaired \\ud800-\\udfff escape)."
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"jsonrpc": "2.0", "id": 5, "error": {"code": -32602, "message": refused}},
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "Invalid request: the line is not a JSON-RPC message."},
        },
        {"jsonrpc": "2.0", "id": 6, "result": {}},
    ]
