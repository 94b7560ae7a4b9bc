"""Audit events of changes made through MCP are told apart from the API's by `"via": "mcp"` in
their details (docs/mcp.md); the request id is the client's when it sent a well-formed one."""

import pytest

from tests.conftest import audit_events
from tests.mcp.conftest import mcp_client

pytestmark = pytest.mark.anyio


async def test_a_change_made_through_mcp_is_marked_via_mcp_whatever_request_id_the_client_sent(mcp_port, ws, in_db):
    """A run started through MCP by a client that sends `X-Request-ID: client-req-12345678`: its
    `run.start` event keeps that id (the client's, to correlate by) and says `via: mcp` in its
    details; a request id alone tells nothing, since any client may send one that reads `mcp-…`."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["owner"], **{"X-Request-ID": "client-req-12345678"}) as client:
        result = await client.call_tool("run_agent", {"agent": "invoice-triage", "input": "Hi."})
    assert not result.is_error, result
    run_id = result.structured_content["id"]
    events = await in_db(audit_events, ws.schema, action="run.start", data={"run": run_id})
    assert len(events) == 1
    assert events[0].request_id == "client-req-12345678"
    assert events[0].data.get("via") == "mcp", events[0].data
