"""A page token is bound to the list it came from (foundry/filtering/pagination.py), on MCP as on
the API: `list_agents` and `resources/list` (both over documents, default order) take no token of
the other, which would go on after a row of the other list."""

import pytest
from django_tenants.utils import schema_context
from mcp import MCPError

from tests.conftest import tenant_user
from tests.mcp.conftest import mcp_client, tool_error, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE, agent_yaml

pytestmark = pytest.mark.anyio

RESOURCES_PER_PAGE = 100  # foundry/mcp/server.py


def domain_yaml(name: str) -> str:
    return f"""apiVersion: foundry/v1
kind: Domain
metadata: {{name: {name}}}
spec:
  entities:
    thing:
      fields:
        label: {{type: string}}
"""


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    """Agents clerk and invoice-triage, the domain finance and enough domains `d000`… that the
    resource list has a second page."""
    from apps.catalog.services import version_publish

    with django_db_blocker.unblock():
        ws = workspace_make(FINANCE, TRIAGE)
        owner = tenant_user(ws.tenant, f"owner@{ws.slug}.test")
        with schema_context(ws.schema):
            version_publish(actor=owner, source=agent_yaml("clerk"), message="clerk")
            for n in range(RESOURCES_PER_PAGE):
                version_publish(actor=owner, source=domain_yaml(f"d{n:03}"), message="filler")
    return ws


async def test_an_agents_page_token_is_no_resource_list_cursor(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        first = await client.call_tool("list_agents", {"page_size": 1})
        token = first.structured_content["next_page_token"]
        assert [a["name"] for a in first.structured_content["agents"]] == ["clerk"] and token
        with pytest.raises(MCPError) as refused:
            await client.list_resources(cursor=token)
    assert (refused.value.code, refused.value.data["code"]) == (-32602, "page_token_mismatch")


async def test_a_resource_list_cursor_is_no_agents_page_token(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        first = await client.list_resources()
        assert len(first.resources) == RESOURCES_PER_PAGE and first.next_cursor
        agents = await client.call_tool("list_agents", {"page_token": first.next_cursor})
    assert tool_error(agents).startswith("page_token_mismatch: "), agents.content[0].text


async def test_each_list_still_takes_its_own_token(mcp_port, ws):
    """The control: each list's own next page."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        first = await client.call_tool("list_agents", {"page_size": 1})
        second = await client.call_tool(
            "list_agents", {"page_size": 1, "page_token": first.structured_content["next_page_token"]}
        )
        resources = await client.list_resources()
        more = await client.list_resources(cursor=resources.next_cursor)
    assert [a["name"] for a in second.structured_content["agents"]] == ["invoice-triage"]
    listed = [r.uri for r in resources.resources + more.resources]
    assert len(listed) == len(set(listed)) == RESOURCES_PER_PAGE + 3
    assert listed[-1] == "foundry://agents/invoice-triage/versions/1"
