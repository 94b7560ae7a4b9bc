"""run_agent's progress notifications (docs/mcp.md: `progress` = seconds waited) only ever
increase, as the MCP specification requires (basic/utilities/progress): the second repeated the
first's 0, the time waited taken before the first look at the run. No worker here: the run stays
queued, and the call reports until its wait is over."""

from itertools import pairwise

import pytest

from tests.mcp.conftest import mcp_client

pytestmark = pytest.mark.anyio


async def test_run_agent_progress_strictly_increases(mcp_port, ws):
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async with mcp_client(mcp_port, ws.slug, ws.tokens["operator"]) as client:
        result = await client.call_tool(
            "run_agent", {"agent": "invoice-triage", "input": "Hi.", "wait_seconds": 1}, progress_callback=on_progress
        )
    assert not result.is_error, result
    assert len(progress) >= 2, progress
    values = [done for done, _, _ in progress]
    assert all(later > earlier for earlier, later in pairwise(values)), progress
