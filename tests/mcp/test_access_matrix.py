"""Roles everywhere, MCP side: every tool is held to the one permission matrix for every role,
exactly as its REST operation is (tests/api/test_access_matrix.py) and the console's pages are
(tests/accounts/test_members.py). The tools are read from the server, so a new tool without an
entry in TOOL_ACCESS fails here."""

import uuid

import pytest

from apps.accounts.permissions import Role, role_has_permission
from foundry.mcp.server import TOOL_ACCESS
from tests.mcp.conftest import mcp_client

RUN_ID = str(uuid.uuid4())
# Arguments that pass validation and name nothing: past the permission check, a tool can only
# answer "not found" or an empty result.
ARGUMENTS = {
    "list_agents": {},
    "get_agent": {"name": "no-such-agent"},
    "validate_manifest": {"content": "kind: Agent\n"},
    "deploy_agent": {"name": "no-such-agent", "version": 1},
    "run_agent": {"agent": "no-such-agent", "input": "hello"},
    "get_run": {"run_id": RUN_ID},
    "list_runs": {},
    "approve_run": {"run_id": RUN_ID},
    "reject_run": {"run_id": RUN_ID},
    "query_dis": {"domain": "no-such-domain"},
    "get_usage": {},
}


@pytest.mark.anyio
async def test_every_tool_declares_its_access_and_is_held_to_the_matrix_for_every_role(mcp_port, fresh_tenant, tokens):
    async with mcp_client(mcp_port, fresh_tenant.slug, tokens["viewer"]) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
    assert listed == set(TOOL_ACCESS) == set(ARGUMENTS)
    for role in Role:
        async with mcp_client(mcp_port, fresh_tenant.slug, tokens[role]) as client:
            for tool, (permission, _scope) in TOOL_ACCESS.items():
                result = await client.call_tool(tool, ARGUMENTS[tool])
                text = result.content[0].text if result.content else ""
                forbidden = result.is_error and ": forbidden: " in text
                assert forbidden == (not role_has_permission(role, permission)), (role, tool, text[:200])
