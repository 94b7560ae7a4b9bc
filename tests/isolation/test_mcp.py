"""MCP entry points not yet driven with another workspace's data: get_usage, validate_manifest,
the DIS resource, filters on list_runs, and page tokens / resource cursors made on another
workspace."""

from datetime import UTC, datetime

import pytest
from django_tenants.utils import schema_context
from mcp import MCPError

from apps.catalog.models import Document
from apps.runs.services import run_create
from tests.billing.test_rollups import ledger_add
from tests.mcp.conftest import mcp_client, tool_error, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio

GLEDGER = FINANCE.replace("  name: finance", "  name: gledger")
GTRIAGE = TRIAGE.replace("  name: invoice-triage", "  name: gtriage").replace("    name: finance", "    name: gledger")


@pytest.fixture(scope="module")
def pair(django_db_setup, django_db_blocker):
    """A (finance + invoice-triage, no usage) and B (gledger + gtriage, two runs, usage this month)."""
    from apps.catalog.services import version_publish
    from tests.conftest import tenant_user

    with django_db_blocker.unblock():
        a = workspace_make(FINANCE, TRIAGE)
        b = workspace_make(GLEDGER, GTRIAGE)
        owner = tenant_user(b.tenant, f"owner@{b.slug}.test")
        with schema_context(b.schema):
            version_publish(actor=owner, source=GTRIAGE.replace("name: gtriage", "name: gsecond"), message="2nd")
            version_publish(actor=owner, source=GLEDGER.replace("name: gledger", "name: gthird"), message="3rd")
            agent = Document.objects.get(name="gtriage")
            runs = [str(run_create(agent=agent, input="B secret input", created_by="test").pk) for _ in range(2)]
        now = datetime.now(UTC)
        ledger_add(b.tenant, agent="gtriage-usage", model="gsecret-model", tokens=(313131, 7, 0), when=now)
    return a, b, runs


async def test_get_usage_of_a_never_counts_bs_calls(mcp_port, pair):
    a, b, _ = pair
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        for group_by in ("agent", "model", "agent_and_model"):
            usage = (await client.call_tool("get_usage", {"group_by": group_by})).structured_content
            assert usage["calls"] == 0 and usage["input_tokens"] == 0, usage
            assert usage["groups"] == []
    async with mcp_client(mcp_port, b.slug, b.tokens["owner"]) as client:
        usage = (await client.call_tool("get_usage", {})).structured_content
        assert usage["input_tokens"] == 313131  # the control: B sees its own


async def test_validate_manifest_on_a_cannot_resolve_bs_domain(mcp_port, pair):
    a, _, _ = pair
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        result = (await client.call_tool("validate_manifest", {"content": GTRIAGE})).structured_content
    assert result["valid"] is False
    assert any("gledger" in p["message"] for p in result["problems"])


@pytest.mark.parametrize("uri", ["foundry://dis/gledger/versions/1", "foundry://agents/gtriage/versions/1"])
async def test_bs_resources_are_not_found_on_a(mcp_port, pair, uri):
    a, _, _ = pair
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource(uri)
    assert caught.value.data["code"] in ("domain_not_found", "agent_not_found")


async def test_list_runs_filters_naming_bs_objects_find_nothing_on_a(mcp_port, pair):
    a, _, runs = pair
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        for flt in (f'id = "{runs[0]}"', 'agent = "gtriage"', f'parent = "{runs[1]}"', 'created_by = "test"'):
            result = await client.call_tool("list_runs", {"filter": flt})
            assert not result.is_error, tool_error(result)
            assert result.structured_content["runs"] == [], flt


async def test_page_tokens_and_cursors_of_b_are_refused_on_a(mcp_port, pair):
    a, b, _ = pair
    async with mcp_client(mcp_port, b.slug, b.tokens["owner"]) as client:
        agents_token = (await client.call_tool("list_agents", {"page_size": 1})).structured_content["next_page_token"]
        runs_token = (await client.call_tool("list_runs", {"page_size": 1})).structured_content["next_page_token"]
    assert agents_token and runs_token
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        agents = await client.call_tool("list_agents", {"page_size": 1, "page_token": agents_token})
        runs = await client.call_tool("list_runs", {"page_size": 1, "page_token": runs_token})
        with pytest.raises(MCPError) as caught:
            await client.list_resources(cursor=agents_token)
    assert tool_error(agents).split(":")[0] == "page_token_mismatch"
    assert tool_error(runs).split(":")[0] == "page_token_mismatch"
    assert caught.value.data["code"] == "page_token_mismatch"


async def test_get_agent_and_query_dis_with_bs_names_reveal_nothing(mcp_port, pair):
    a, _, _ = pair
    async with mcp_client(mcp_port, a.slug, a.tokens["owner"]) as client:
        for name, args in (
            ("get_agent", {"name": "gsecond"}),
            ("query_dis", {"domain": "gthird", "entity": "vendor"}),
            ("query_dis", {"domain": "gledger", "version": 1}),
            ("deploy_agent", {"name": "gsecond", "version": 1}),
        ):
            result = await client.call_tool(name, args)
            assert tool_error(result).split(":")[0] in ("agent_not_found", "domain_not_found"), (name, args)
