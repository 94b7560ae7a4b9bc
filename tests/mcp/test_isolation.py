"""Isolation over MCP: a token means nothing on another workspace's host, another workspace's
ids are not found, and the matrix (role and token scope) refuses — recorded, nothing changed."""

import httpx2
import pytest
from django_tenants.utils import schema_context
from mcp import MCPError

from apps.catalog.models import Document, Kind
from apps.runs.models import Run
from apps.runs.services import run_create
from tests.conftest import audit_events
from tests.mcp.conftest import mcp_client, mcp_url, token_prefix, tool_error, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pair(django_db_setup, django_db_blocker):
    """Workspace A (empty) and B (finance, invoice-triage deployed, one queued run)."""
    with django_db_blocker.unblock():
        a, b = workspace_make(), workspace_make(FINANCE, TRIAGE)
        with schema_context(b.schema):
            run = run_create(agent=Document.objects.get(name="invoice-triage"), input="Hi.", created_by="test")
    return a, b, str(run.pk)


def b_state(schema: str) -> tuple:
    with schema_context(schema):
        agent = Document.objects.select_related("live__version").get(kind=Kind.AGENT, name="invoice-triage")
        return agent.live.version.number, list(Run.objects.values_list("status", flat=True))


def test_a_token_is_refused_on_another_workspaces_host(mcp_port, pair):
    a, b, _ = pair
    response = httpx2.post(
        mcp_url(mcp_port),
        content='{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
        headers={
            "Host": f"{b.slug}.localhost:{mcp_port}",
            "Authorization": f"Bearer {a.tokens['owner']}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_another_workspaces_agents_runs_and_domains_are_not_found(mcp_port, pair, in_db):
    a, b, run_id = pair
    before = await in_db(b_state, b.schema)
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        calls = [
            ("get_run", {"run_id": run_id}),
            ("approve_run", {"run_id": run_id}),
            ("reject_run", {"run_id": run_id}),
            ("get_agent", {"name": "invoice-triage"}),
            ("deploy_agent", {"name": "invoice-triage", "version": 1}),
            ("run_agent", {"agent": "invoice-triage", "input": "Hi."}),
            ("query_dis", {"domain": "finance"}),
        ]
        codes = [tool_error(await client.call_tool(name, arguments)).split(":")[0] for name, arguments in calls]
        runs = (await client.call_tool("list_runs", {})).structured_content["runs"]
        agents = (await client.call_tool("list_agents", {})).structured_content["agents"]
        resources = (await client.list_resources()).resources
        with pytest.raises(MCPError) as caught:
            await client.read_resource("foundry://agents/invoice-triage/versions/1")
    assert codes == [
        "run_not_found",
        "run_not_found",
        "run_not_found",
        "agent_not_found",
        "agent_not_found",
        "agent_not_found",
        "domain_not_found",
    ]
    assert (runs, agents, resources) == ([], [], [])
    assert caught.value.data["code"] == "agent_not_found"
    assert await in_db(b_state, b.schema) == before


async def test_a_viewer_cannot_deploy_run_or_decide_and_each_refusal_is_recorded(mcp_port, pair, in_db):
    _, b, run_id = pair
    token = b.tokens["viewer"]
    before = await in_db(b_state, b.schema)
    async with mcp_client(mcp_port, b.slug, token) as client:
        refusals = [
            tool_error(await client.call_tool(name, arguments))
            for name, arguments in (
                ("deploy_agent", {"name": "invoice-triage", "version": 1}),
                ("run_agent", {"agent": "invoice-triage", "input": "Hi."}),
                ("approve_run", {"run_id": run_id}),
                ("reject_run", {"run_id": run_id}),
            )
        ]
        # What a viewer may do still works.
        assert not (await client.call_tool("get_run", {"run_id": run_id})).is_error
    assert refusals == [
        "forbidden: deploy_agent needs agents.deploy.",
        "forbidden: run_agent needs runs.start.",
        "forbidden: approve_run needs runs.approve.",
        "forbidden: reject_run needs runs.approve.",
    ]
    events = await in_db(audit_events, b.schema, action="access.denied", actor_id=f"token:{token_prefix(token)}")
    assert [(e.target, e.outcome, e.data) for e in events] == [
        ("mcp_tool:deploy_agent", "denied", {"via": "mcp", "permission": "agents.deploy"}),
        ("mcp_tool:run_agent", "denied", {"via": "mcp", "permission": "runs.start"}),
        ("mcp_tool:approve_run", "denied", {"via": "mcp", "permission": "runs.approve"}),
        ("mcp_tool:reject_run", "denied", {"via": "mcp", "permission": "runs.approve"}),
    ]
    assert await in_db(b_state, b.schema) == before


async def test_a_read_scoped_token_reads_but_cannot_deploy(mcp_port, pair, in_db):
    _, b, _ = pair
    token = b.tokens["reader"]
    async with mcp_client(mcp_port, b.slug, token) as client:
        assert not (await client.call_tool("list_agents", {})).is_error
        refused = await client.call_tool("deploy_agent", {"name": "invoice-triage", "version": 1})
    assert tool_error(refused) == "forbidden: deploy_agent needs the 'write' scope."
    events = await in_db(audit_events, b.schema, action="access.denied", actor_id=f"token:{token_prefix(token)}")
    assert [(e.target, e.data) for e in events] == [("mcp_tool:deploy_agent", {"via": "mcp", "scope": "write"})]


async def test_a_token_without_the_read_scope_cannot_read_resources_or_runs(mcp_port, pair, in_db):
    _, b, run_id = pair
    token = b.tokens["runner"]
    async with mcp_client(mcp_port, b.slug, token) as client:
        with pytest.raises(MCPError) as read:
            await client.read_resource("foundry://dis/finance/versions/1")
        with pytest.raises(MCPError) as listed:
            await client.list_resources()
        run = await client.call_tool("get_run", {"run_id": run_id})
    assert (read.value.code, read.value.data) == (
        -32003,
        {"code": "forbidden", "uri": "foundry://dis/finance/versions/1"},
    )
    assert read.value.message == "forbidden: foundry://dis/finance/versions/1 needs the 'read' scope."
    assert (listed.value.code, listed.value.data["code"]) == (-32003, "forbidden")
    assert tool_error(run) == "forbidden: get_run needs the 'read' scope."
    events = await in_db(audit_events, b.schema, action="access.denied", actor_id=f"token:{token_prefix(token)}")
    assert [e.target for e in events] == [
        "mcp_resource:foundry://dis/finance/versions/1",
        "mcp_resource:foundry://",
        "mcp_tool:get_run",
    ]
