"""What an MCP call outlives, and what /mcp refuses up front: a run_agent wait stops once its
workspace is suspended or its token revoked (each look is admitted as a new request would be);
GET /mcp is 405 (a stateless server sends no stream of its own); an unknown prompt is -32602; a
request whose id is neither a string nor an integer is 400 / -32600, not taken for a notification."""

import json
import time

import anyio
import httpx2
import pytest
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from apps.tokens.services import token_revoke
from tests.mcp.conftest import mcp_url, token_prefix, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}


def headers(port: int, ws, role: str = "owner") -> dict:
    return {**HEADERS, "Host": f"{ws.slug}.localhost:{port}", "Authorization": f"Bearer {ws.tokens[role]}"}


def revoke(schema: str, token: str) -> None:
    with schema_context(schema):
        token_revoke(actor="test", token=ApiToken.objects.get(prefix=token_prefix(token)))


def suspend(tenant) -> None:
    from apps.tenants.models import Tenant
    from apps.tenants.services import tenant_suspend

    tenant_suspend(tenant=Tenant.objects.get(pk=tenant.pk))


def sse_result(response: httpx2.Response) -> dict:
    """The JSON-RPC response among the SSE events of a POST /mcp answer."""
    for line in response.text.splitlines():
        if line.startswith("data: "):
            message = json.loads(line[6:])
            if "id" in message:
                return message
    raise AssertionError(response.text[:500])


async def _wait_call_across(port: int, ws, in_db, change) -> tuple[float, httpx2.Response]:
    """POST run_agent with wait_seconds=5 (the run stays queued: see below), apply `change`
    1.5 s into the wait, and return (seconds the call took, its response)."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "run_agent",
                "arguments": {"agent": "invoice-triage", "input": "Hi.", "wait_seconds": 5},
            },
        }
    )
    out = {}

    def post():
        started = time.monotonic()
        out["response"] = httpx2.post(mcp_url(port), content=body, headers=headers(port, ws), timeout=30)
        out["took"] = time.monotonic() - started

    # The run must stay queued through the wait, whether or not a Celery worker of the test
    # session is about: the workspace's one run slot is held here, so no worker may start it.
    slot = await in_db(_only_slot_held, ws.tenant)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, post)
            await anyio.sleep(1.5)
            await change()
    finally:
        await in_db(slot.release)
    return out["took"], out["response"]


def _only_slot_held(tenant):
    from apps.runs.admission import RunSlot
    from apps.tenants.services import tenant_limits_set

    tenant_limits_set(tenant=tenant, overrides={"concurrent_runs": 1})
    slot = RunSlot(tenant.pk)
    assert slot.acquire()
    return slot


@pytest.mark.anyio
async def test_run_agent_wait_keeps_reading_a_suspended_workspace(mcp_port, in_db):
    ws = await in_db(workspace_make, FINANCE, TRIAGE)
    took, response = await _wait_call_across(mcp_port, ws, in_db, lambda: in_db(suspend, ws.tenant))
    assert took >= 1.5, "the call ended before the suspension"
    result = sse_result(response)
    assert "error" in result or result["result"]["isError"], (
        "after the suspension the call still returned the run: "
        + json.dumps(result["result"].get("structuredContent", {}))[:200]
    )


@pytest.mark.anyio
async def test_run_agent_wait_keeps_serving_a_revoked_token(mcp_port, in_db):
    ws = await in_db(workspace_make, FINANCE, TRIAGE)
    took, response = await _wait_call_across(mcp_port, ws, in_db, lambda: in_db(revoke, ws.schema, ws.tokens["owner"]))
    assert took >= 1.5, "the call ended before the revocation"
    result = sse_result(response)
    assert "error" in result or result["result"]["isError"], "a revoked token's call still returned the run"


def test_get_is_405_a_stateless_server_opens_no_stream(mcp_port, ws):
    get_headers = {**headers(mcp_port, ws), "Accept": "text/event-stream"}
    response = httpx2.get(mcp_url(mcp_port), headers=get_headers, timeout=10)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_an_unknown_prompt_is_a_json_rpc_invalid_params_error(mcp_port, ws):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "nope"}})
    result = sse_result(httpx2.post(mcp_url(mcp_port), content=body, headers=headers(mcp_port, ws), timeout=30))
    assert result["error"]["code"] == -32602, result


@pytest.mark.parametrize("request_id", [{"a": 1}, 1.5, [1], True], ids=["object", "float", "array", "bool"])
def test_a_request_with_an_invalid_id_is_refused_not_silently_accepted(mcp_port, ws, request_id):
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list"})
    response = httpx2.post(mcp_url(mcp_port), content=body, headers=headers(mcp_port, ws), timeout=30)
    assert response.status_code == 400, (response.status_code, response.text[:200])
