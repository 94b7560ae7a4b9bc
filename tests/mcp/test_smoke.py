import pytest

from tests.mcp.conftest import mcp_client


@pytest.mark.anyio
async def test_list_tools_and_agents(mcp_port, fresh_tenant, tokens):
    async with mcp_client(mcp_port, fresh_tenant.slug, tokens["viewer"]) as client:
        tools = await client.list_tools()
        assert {"list_agents", "get_agent", "validate_manifest"} <= {t.name for t in tools.tools}
        result = await client.call_tool("list_agents", {})
        assert not result.is_error, result
        print(result.structured_content)
        result = await client.call_tool("validate_manifest", {"content": "kind: Agent\nname: x\n"})
        print(result.structured_content)
        result = await client.call_tool("get_agent", {"name": "nope"})
        print(result)
        result = await client.call_tool("list_agents", {"filter": "name = "})
        print(result)
