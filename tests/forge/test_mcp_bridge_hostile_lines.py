"""`forge mcp` (the stdio bridge) fed hostile but valid JSON lines: a line nested past the parser's
depth is answered and the bridge keeps serving; a key named twice is refused as the gateway does."""

import json

from tests.forge.test_mcp_bridge import bridge_fed, workspace_endpoint
from tests.mcp.conftest import tokens  # noqa: F401 - fixture

PING = b'{"jsonrpc": "2.0", "id": 99, "method": "ping"}\n'


def test_a_deeply_nested_line_is_answered_and_the_bridge_keeps_serving(mcp_port, fresh_tenant, tokens):  # noqa: F811
    """docs/mcp.md (`forge mcp`): only a refused token or unreachable endpoint at start-up stops
    the bridge; later problems are answered as JSON-RPC errors "and the bridge keeps serving";
    a line that is not a JSON-RPC message is answered with id null (as for `not json`). A valid
    JSON line nested 5,000 levels deep (here inside `params`) makes `_Lines.__aiter__`'s
    `json.loads` raise RecursionError, which it does not catch (it catches ValueError only):
    the bridge dies with `forge: error: Unexpected ExceptionGroup ...`, exit 2, and the next
    request (ping 99) is never answered. Expected: an error answer for that line (the SDK's
    reader refuses it as -32700, "recursion limit exceeded"), ping 99 answered, exit 0."""
    deep = b'{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}\n"
    done = bridge_fed(workspace_endpoint(mcp_port, fresh_tenant.slug), tokens["viewer"], deep + PING)
    assert done.returncode == 0, done.stderr[-300:]
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"jsonrpc": "2.0", "id": 99, "result": {}} in answers, answers
    assert any("error" in answer for answer in answers), answers


def test_a_key_named_twice_is_refused_through_the_bridge_as_at_the_gateway(mcp_port, fresh_tenant, tokens):  # noqa: F811
    """docs/mcp.md "Errors and limits": `json_duplicate_key` — "a JSON object in the message
    names a key twice (`{"role": "viewer", "role": "owner"}`: readers differ on which counts);
    refused before any tool runs, as the JSON-RPC error -32602 whose message starts
    `json_duplicate_key:`". Sent to /mcp directly it is; through `forge mcp` (which docs/mcp.md
    says passes every message through unchanged) the SDK's stdio reader keeps the last value and
    re-serializes the message, so the gateway never sees the duplicate and the tool runs with
    `name = "yy"` (answer: `agent_not_found: There is no agent 'yy'`). The bridge already mirrors
    the gateway's lone-surrogate refusal at the request's id (`_Lines`); duplicates are not."""
    line = (
        b'{"jsonrpc": "2.0", "id": 4, "method": "tools/call",'
        b' "params": {"name": "get_agent", "arguments": {"name": "zz", "name": "yy"}}}\n'
    )
    done = bridge_fed(workspace_endpoint(mcp_port, fresh_tenant.slug), tokens["viewer"], line + PING)
    assert done.returncode == 0, done.stderr[-300:]
    answers = {answer["id"]: answer for answer in map(json.loads, done.stdout.splitlines())}
    assert "result" not in answers.get(4, {}), answers.get(4)  # the tool must not have run
    assert answers[4]["error"]["code"] == -32602, answers[4]
    assert answers[4]["error"]["message"].startswith("json_duplicate_key:"), answers[4]
