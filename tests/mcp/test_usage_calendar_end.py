"""`get_usage` for a period on the last day of the calendar (9999-12-31, UTC) answers zero usage
or a coded refusal, never an uncoded error: the period's first whole day, after a start on the
calendar's last day, is none rather than an overflow."""

import pytest

from tests.mcp.conftest import mcp_client, workspace_make

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return workspace_make()


async def test_a_period_on_the_last_calendar_day_is_a_result_or_a_coded_refusal(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        result = await client.call_tool("get_usage", {"start": "9999-12-31T00:00:00Z", "end": "9999-12-31T12:00:00Z"})
    text = result.content[0].text
    # An empty period far in the future: zero usage, or at worst `period_invalid`.
    assert not result.is_error or text.startswith("Error executing tool get_usage: period_invalid: "), text
