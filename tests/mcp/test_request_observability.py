"""/mcp is served by foundry.asgi outside Django's middleware stack, so the request-level
observability every other request gets (docs/observability.md) is missing there: it is not
counted in the RED metrics (`foundry_http_requests_total`) and its answer carries no
`X-Request-ID` — although the gateway even lists X-Request-ID among the CORS-exposed headers.

Driven in-process through the ASGI application (foundry/asgi.py), with an unauthenticated POST
the gateway refuses (401) before any tool runs."""

import asyncio
import json

from foundry.metrics import HTTP_REQUESTS


def _requests_total() -> float:
    return sum(
        sample.value
        for metric in HTTP_REQUESTS.collect()
        for sample in metric.samples
        if sample.name == "foundry_http_requests_total"
    )


def _asgi_post(path: str, host: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    from foundry.asgi import application

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    raw = [
        (b"host", host.encode()),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
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
        "headers": raw,
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
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}


def test_an_mcp_request_is_counted_in_the_request_metrics(acme):
    before = _requests_total()
    status, _headers = _asgi_post("/mcp", "acme.localhost")
    assert status == 401
    assert _requests_total() == before + 1, "the /mcp request is missing from foundry_http_requests_total"


def test_an_mcp_answer_carries_its_request_id(acme):
    status, headers = _asgi_post("/mcp", "acme.localhost", {"X-Request-ID": "mcp-client-req-0001"})
    assert status == 401
    assert headers.get("x-request-id") == "mcp-client-req-0001"
