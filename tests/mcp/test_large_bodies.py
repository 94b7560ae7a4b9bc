"""The gateway's JSON-RPC checks (docs/mcp.md) hold for every body the SDK takes, up to its 4 MiB:
the gateway peeked at 1 MiB only, and a longer body went unchecked."""

import json

import httpx2
import pytest

from tests.mcp.conftest import mcp_url, workspace_make

PAD = "x" * (1536 * 1024)  # 1.5 MiB: above the gateway's peek, well below the 4 MiB limit


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return workspace_make()


def _post(port, ws, body: str):
    headers = {
        "Host": f"{ws.slug}.localhost:{port}",
        "Authorization": f"Bearer {ws.tokens['owner']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    return httpx2.post(mcp_url(port), content=body.encode(), headers=headers, timeout=30)


def test_a_request_with_a_null_id_in_a_large_body_is_answered_not_dropped(mcp_port, ws):
    """docs/mcp.md: 'a request whose id is neither a string nor an integer' is 400 -32600, at any
    size: the SDK took a 1.5 MiB one for a notification (202, no answer), and the client waited."""
    small = {"jsonrpc": "2.0", "id": None, "method": "ping", "params": {"_meta": {"pad": "x"}}}
    large = {"jsonrpc": "2.0", "id": None, "method": "ping", "params": {"_meta": {"pad": PAD}}}
    answered = _post(mcp_port, ws, json.dumps(small))
    assert answered.status_code == 400 and answered.json()["error"]["code"] == -32600
    response = _post(mcp_port, ws, json.dumps(large))
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert response.json()["error"]["code"] == -32600


def test_a_lone_surrogate_in_a_large_body_is_json_text_invalid(mcp_port, ws):
    """docs/mcp.md: a lone surrogate anywhere in a message is refused as -32602 whose message
    starts `json_text_invalid:`, at any size (the SDK answered a 1.5 MiB one -32700)."""
    body = '{"jsonrpc":"2.0","id":7,"method":"ping","params":{"_meta":{"pad":"' + PAD + '","s":"\\ud800"}}}'
    response = _post(mcp_port, ws, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32602, error
    assert error["message"].startswith("json_text_invalid:"), error
