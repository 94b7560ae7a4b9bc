"""/mcp settles who is calling from the headers, before it waits for the body, and parses the body
in a worker thread: a client with no token, or aimed at a host that is no workspace, costs the
event loop that serves every workspace's MCP traffic neither the wait for its body (up to 4 MiB,
sent slowly or never) nor the parsing of it (PRODUCT.md, Controls: one tenant's flood never slows
another's requests)."""

import json

import anyio
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


def mcp_scope(host: bytes, *headers: tuple[bytes, bytes]) -> dict:
    """An ASGI scope of a POST to /mcp on `host`, with `headers` besides the usual ones."""
    return {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "scheme": "http",
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
        "headers": [
            (b"host", host),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            *headers,
        ],
    }


async def test_a_request_to_a_host_that_is_no_workspace_is_refused_without_parsing_its_body(parses):
    sent = await _call(mcp_scope(settings.FOUNDRY_BASE_DOMAIN.encode()), BODY)  # the operator console's host
    assert sent[0]["status"] == 421
    assert [size for size in parses if size >= len(BODY)] == []


# --- refused from the headers, without waiting for the body ---------------------------------------


async def _answer_to_a_body_that_never_finishes(scope) -> list:
    from foundry.mcp.gateway import McpGateway

    async def app(scope, receive, send):  # the SDK: never reached by a refused request
        raise AssertionError("the SDK app was called for a request the gateway refuses")

    first = [{"type": "http.request", "body": b'{"jsonrpc": "2.0", "id": 1, ', "more_body": True}]
    never = anyio.Event()

    async def receive():
        if first:
            return first.pop(0)
        await never.wait()  # the client announced 4 MB and stopped sending

    sent = []

    async def send(message):
        sent.append(message)

    with anyio.move_on_after(5):
        await McpGateway(app)(scope, receive, send)
    return sent


async def test_a_request_to_a_host_that_is_no_workspace_is_refused_without_waiting_for_its_body():
    """421 from the Host header alone, at once."""
    sent = await _answer_to_a_body_that_never_finishes(
        mcp_scope(settings.FOUNDRY_BASE_DOMAIN.encode(), (b"content-length", b"4000000"))
    )
    assert sent and sent[0]["status"] == 421, sent


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    from tests.mcp.conftest import workspace_make

    with django_db_blocker.unblock():
        return workspace_make()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_request_without_a_token_is_401_without_waiting_for_its_body(mcp_port, ws, anyio_backend):
    """Over the real server: headers announcing a 4 MB body, a few bytes of it, no Authorization:
    401 at once (the credential is in the headers)."""
    stream = await anyio.connect_tcp("127.0.0.1", mcp_port)
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: {ws.slug}.localhost:{mcp_port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        "Content-Length: 4000000\r\n\r\n"
    ).encode()
    answer = b""
    async with stream:
        await stream.send(head + b'{"jsonrpc": "2.0", "id": 1, ')
        with anyio.move_on_after(5):
            answer = await stream.receive()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
