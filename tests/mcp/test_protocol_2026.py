"""/mcp on the 2026-07-28 protocol (its per-request envelope): JSON-RPC's codes and version
negotiation as on the handshake versions."""

import json

import httpx2
import pytest

from tests.mcp.conftest import mcp_url, workspace_make

MODERN = "2026-07-28"


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return workspace_make()


def _post(port, ws, body: dict, version: str, method: str):
    headers = {
        "Host": f"{ws.slug}.localhost:{port}",
        "Authorization": f"Bearer {ws.tokens['viewer']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
        "Mcp-Method": method,
    }
    return httpx2.post(mcp_url(port), content=json.dumps(body), headers=headers, timeout=30)


def test_a_2026_request_whose_params_are_no_object_is_32602_at_its_id(mcp_port, ws):
    """docs/mcp.md (HTTP statuses: "400 | JSON-RPC -32602 | a request whose params are no object
    (at its id)") and JSON-RPC 2.0 §5.1, on the 2026-07-28 path as on the 2025 ones (the SDK's own
    answer there is -32600 with id null)."""
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": []}
    response = _post(mcp_port, ws, body, MODERN, "tools/list")
    answer = response.json()
    assert (response.status_code, answer.get("id"), answer["error"]["code"]) == (400, 7, -32602), answer


def test_a_2026_probe_at_a_newer_version_still_gets_the_supported_list(mcp_port, ws):
    """Version negotiation on the per-request protocol: a client newer than this server probes
    `server/discover` at its own latest version; the SDK answered -32022
    (UNSUPPORTED_PROTOCOL_VERSION) with data.supported, from which the client retries at a
    mutual version (mcp.client.session.discover, mcp.client._probe.negotiate_auto): the gateway's
    refusal of an unknown MCP-Protocol-Version leaves a request that names its version in
    params._meta to the SDK, so such a client can negotiate."""
    newer = "2027-03-01"
    meta = {"io.modelcontextprotocol/protocolVersion": newer, "io.modelcontextprotocol/clientCapabilities": {}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}
    response = _post(mcp_port, ws, body, newer, "server/discover")
    error = response.json()["error"]
    assert error["code"] == -32022, error
    assert MODERN in (error.get("data") or {}).get("supported", []), error
