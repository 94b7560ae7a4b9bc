"""/mcp refuses a body sent with no or another Content-Type than application/json with a JSON 415
(`unsupported_media_type`), not the SDK's plain-text 400."""

import json

import httpx2
import pytest

from tests.mcp.conftest import mcp_url, ws  # noqa: F401 - module-scoped workspace fixture


@pytest.mark.parametrize("content_type", ["text/plain", None], ids=["text_plain", "missing"])
def test_a_body_without_a_json_content_type_gets_a_json_error_not_plain_text(mcp_port, ws, content_type):  # noqa: F811
    """PRODUCT.md ("Bad input gets a clear error", "Errors are JSON with a stable code") and
    docs/mcp.md "Errors and limits": every refusal of /mcp is JSON — the gateway's own
    `{"error": {"code", ...}}` or a JSON-RPC error. A valid `ping` sent as `text/plain` (or with
    no Content-Type at all, as curl -d or a hand-written client may) is answered today by the
    SDK's transport-security check with a bare `400 Invalid Content-Type header`, plain text with
    no Content-Type header — no code a client can act on. Expected: a 4xx (415 fits) whose body
    is JSON carrying an error (the SDK's own streamable_http path means a JSON-RPC error,
    "Unsupported Media Type: Content-Type must be application/json")."""
    headers = {
        "Host": f"{ws.slug}.localhost:{mcp_port}",
        "Authorization": f"Bearer {ws.tokens['developer']}",
        "Accept": "application/json, text/event-stream",
    }
    if content_type:
        headers["Content-Type"] = content_type
    response = httpx2.post(
        mcp_url(mcp_port),
        content=b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
        headers=headers,
        timeout=30,
    )
    assert 400 <= response.status_code < 500, response.status_code
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.headers.get("content-type"),
        response.text[:200],
    )
    body = json.loads(response.content)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert body["error"].get("code") not in (None, ""), body
