"""/mcp settles who is calling before it parses the body, and parses it in a worker thread: a
client with no token, or aimed at a host that is no workspace, costs the event loop that serves
every workspace's MCP traffic no parsing of its up to 1 MiB body (PRODUCT.md, Controls: one
tenant's flood never slows another's requests)."""

import json

import pytest
from django.conf import settings

from foundry.mcp import gateway as gateway_module

pytestmark = pytest.mark.anyio

BODY = b"[" + b"{}," * 349_000 + b"{}]"  # just under the 1 MiB peek limit


async def _call(scope, body: bytes):
    from foundry.mcp.gateway import McpGateway

    async def app(scope, receive, send):  # the SDK: never reached by a refused request
        raise AssertionError("the SDK app was called for a request the gateway refuses")

    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent = []

    async def send(message):
        sent.append(message)

    await McpGateway(app)(scope, receive, send)
    return sent


@pytest.fixture
def parses(monkeypatch):
    calls = []
    real = json.loads

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(gateway_module.json, "loads", counting)
    return calls


async def test_a_request_to_a_host_that_is_no_workspace_is_refused_without_parsing_its_body(parses):
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "scheme": "http",
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
        "headers": [
            (b"host", settings.FOUNDRY_BASE_DOMAIN.encode()),  # the operator console's host: no workspace
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
        ],
    }
    sent = await _call(scope, BODY)
    assert sent[0]["status"] == 421
    assert [size for size in parses if size >= len(BODY)] == []
