"""One POST through an ASGI application in-process (foundry.asgi's, or one imported again with
tracing on): what tests of /mcp's plumbing send, and what they get back."""

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    messages: list[dict]


def asgi_post(
    application, host: str, body: bytes = b"{}", headers=(), *, path: str = "/mcp", session_manager=None
) -> Answer:
    """POST `body` to `path` on `host` with `headers` ((name, value) bytes pairs, after the host,
    content type and accept). `session_manager`: the MCP SDK's, run around the call, as the
    application's lifespan runs it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", host.encode()),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict] = []
    received = False

    async def receive():
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected

    async def send(message):
        sent.append(message)

    async def main():
        running = session_manager.run() if session_manager is not None else contextlib.nullcontext()
        async with running:
            await asyncio.wait_for(application(scope, receive, send), 30)

    asyncio.run(main())
    start = next((m for m in sent if m["type"] == "http.response.start"), {"status": 0})
    return Answer(
        start["status"],
        {k.decode().lower(): v.decode() for k, v in start.get("headers", [])},
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
        sent,
    )
