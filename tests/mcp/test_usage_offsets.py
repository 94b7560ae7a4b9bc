"""`get_usage` takes any ISO 8601 time; PostgreSQL stores UTC offsets only up to ±15:59 (Python
reads ±23:59): times are taken to UTC first, and one out of range once there is period_invalid."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from apps.billing.models import UsageRecord
from apps.billing.rls import current_tenant_id, usage_scope
from tests.mcp.conftest import mcp_client, workspace_make

pytestmark = pytest.mark.anyio

SUMS = ("calls", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "unpriced_calls")


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    """A workspace with one priced model call on 2 January 2026 and one on 1 January, 12:00 UTC."""
    with django_db_blocker.unblock():
        ws = workspace_make()
        with schema_context(ws.schema):
            tenant_id = current_tenant_id()
            with usage_scope(tenant_id):
                for day, tokens in ((1, 10), (2, 100)):
                    UsageRecord.objects.create(
                        tenant_id=tenant_id,
                        cost_usd=Decimal("0.001"),
                        project="p",
                        agent="alpha",
                        provider="scripted",
                        model="m1",
                        input_tokens=tokens,
                        output_tokens=1,
                        cached_tokens=0,
                        latency_ms=1.0,
                        created_at=datetime(2026, 1, day, 12, tzinfo=UTC),
                    )
    return ws


def _sums(result) -> tuple:
    assert not result.is_error, result.content[0].text
    usage = result.structured_content
    return tuple(Decimal(str(usage[key])) if key == "cost_usd" else usage[key] for key in SUMS)


async def test_it_reads_an_offset_postgresql_cannot_store_as_the_same_instant_in_utc(mcp_port, ws):
    # 2026-01-02T12:00+23:59 is 2026-01-01T12:01Z: the call of 1 January (12:00 UTC) is before it.
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        far = await client.call_tool("get_usage", {"start": "2026-01-02T12:00:00+23:59", "end": "2026-02-01T00:00:00Z"})
        utc = await client.call_tool("get_usage", {"start": "2026-01-01T12:01:00Z", "end": "2026-02-01T00:00:00Z"})
        far_end = await client.call_tool(
            "get_usage", {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00-23:59"}
        )
    assert _sums(far) == _sums(utc) == (1, 100, 1, 0, Decimal("0.001"), 0)
    # The end is 2026-01-01T23:59Z: only the call of 1 January.
    assert _sums(far_end) == (1, 10, 1, 0, Decimal("0.001"), 0)


@pytest.mark.parametrize(
    "period",
    [
        {"start": "0001-01-01T00:00:00+14:00"},  # before year 1 once in UTC
        {"end": "9999-12-31T23:59:59-14:00"},  # after year 9999 once in UTC
        {"start": "0001-01-01T00:00:00+23:59", "end": "0001-01-02T00:00:00Z"},
    ],
    ids=["start_before_year_1_in_utc", "end_after_year_9999_in_utc", "start_far_offset_in_year_1"],
)
async def test_a_time_at_the_edge_of_the_calendar_is_a_result_or_a_coded_refusal(mcp_port, ws, period):
    """Guards the fix: converting to UTC raises OverflowError at these edges."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        result = await client.call_tool("get_usage", period)
    text = result.content[0].text
    assert not result.is_error or text.startswith("Error executing tool get_usage: period_invalid: "), text


async def test_the_same_period_in_utc_sums_what_the_offset_test_expects(mcp_port, ws):
    """The control of the test above: its UTC spelling answers today."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        utc = await client.call_tool("get_usage", {"start": "2026-01-01T12:01:00Z", "end": "2026-02-01T00:00:00Z"})
        day = await client.call_tool("get_usage", {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T23:59:00Z"})
    assert _sums(utc) == (1, 100, 1, 0, Decimal("0.001"), 0)
    assert _sums(day) == (1, 10, 1, 0, Decimal("0.001"), 0)
