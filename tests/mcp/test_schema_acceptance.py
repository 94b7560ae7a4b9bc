"""MCP tool input schemas against what the tools accept (docs/mcp.md: "Types are taken as the
schema states them")."""

import pytest
from jsonschema import Draft202012Validator

from tests.mcp.conftest import mcp_client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "start",
    [
        "2026-01-01t00:00:00z",  # RFC 3339 §5.6: "T" and "Z" may be lower case
        "2026-01-01T00:00:00.1234567890Z",  # RFC 3339: time-secfrac is "." 1*DIGIT
    ],
)
async def test_get_usage_takes_every_date_time_its_input_schema_advertises(mcp_port, ws, start):
    """get_usage's inputSchema declares `start`/`end` as `{"type": "string", "format": "date-time"}`
    (RFC 3339). A client that checks its arguments against that schema sends these values, and
    get_usage takes them, as approve_run's `requested_at` (same declared format) does."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        schema = next(t.input_schema for t in (await client.list_tools()).tools if t.name == "get_usage")
        arguments = {"start": start}
        assert Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).is_valid(arguments)
        result = await client.call_tool("get_usage", arguments)
    assert not result.is_error, result.content[0].text
