"""Every /mcp answer is `no-store, private`, tool answers included. The SDK's streamed (SSE)
answers came with its own `Cache-Control: no-cache, no-transform`, which the platform left in
place: `no-cache` lets a cache store the answer (revalidating before reuse), and a tool's answer
holds the workspace's data (runs, manifests, usage). Now the platform's directive is the one sent,
keeping the SDK's `no-transform` (no proxy may buffer or re-encode an event stream)."""

import json

from tests.asgi_calls import asgi_post
from tests.mcp.test_client_address import asgi  # noqa: F401 - the fixture


def _directives(answer) -> set[str]:
    return {part.strip() for part in answer.headers.get("cache-control", "").split(",")}


def test_a_tool_answer_is_not_storable(asgi):  # noqa: F811
    module, ws = asgi
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_agents", "arguments": {}}}
    headers = [(b"mcp-protocol-version", b"2025-06-18"), (b"authorization", f"Bearer {ws.tokens['owner']}".encode())]
    answer = asgi_post(
        module.application, f"{ws.slug}.localhost", json.dumps(payload).encode(), headers,
        session_manager=module.mcp.session_manager,
    )  # fmt: skip
    assert answer.status == 200, answer.body
    assert b"invoice-triage" in answer.body
    assert {"no-store", "private"} <= _directives(answer), answer.headers.get("cache-control")
    assert "no-cache" not in _directives(answer)


def test_another_workspaces_token_gets_no_answer_to_store(asgi):  # noqa: F811
    module, ws = asgi
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_agents", "arguments": {}}}
    headers = [(b"mcp-protocol-version", b"2025-06-18"), (b"authorization", f"Bearer {ws.tokens['owner']}".encode())]
    answer = asgi_post(
        module.application, "acme.localhost", json.dumps(payload).encode(), headers,
        session_manager=module.mcp.session_manager,
    )  # fmt: skip
    assert answer.status == 401 and b"invoice-triage" not in answer.body
    assert "no-store" in _directives(answer)
