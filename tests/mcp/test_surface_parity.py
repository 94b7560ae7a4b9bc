"""The same operation through MCP and the REST API: validation and what is shown must agree
(docs/mcp.md: each tool "calls the same service, so the console, the API and MCP behave alike")."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from apps.billing.models import UsageRecord
from apps.billing.rls import current_tenant_id, usage_scope
from tests.api.conftest import api
from tests.mcp.conftest import mcp_client, tool_error, workspace_make

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    """A workspace with one priced model call in January 2026 costing 0.0000001 USD
    (e.g. 10 tokens of a model priced at 0.01 USD per million)."""
    with django_db_blocker.unblock():
        ws = workspace_make()
        with schema_context(ws.schema):
            tenant_id = current_tenant_id()
            with usage_scope(tenant_id):
                UsageRecord.objects.create(
                    tenant_id=tenant_id,
                    cost_usd=Decimal("0.00000010"),
                    project="p",
                    agent="alpha",
                    provider="scripted",
                    model="m1",
                    input_tokens=10,
                    output_tokens=0,
                    cached_tokens=0,
                    latency_ms=1.0,
                    created_at=datetime(2026, 1, 5, 12, tzinfo=UTC),
                )
    return ws


async def test_get_usage_shows_a_cost_as_the_api_statement_does(mcp_port, ws, in_db):
    """MCP `get_usage` and `GET /api/v1/usage/statement` report the same ledger
    (apps/billing/apis_statement.py: "the same figures the console's usage page and MCP
    `get_usage` show"). The API writes a cost as a plain decimal string with 8 places
    ("0.00000010"); MCP shows the same figure the same way, not in scientific notation
    ("1.0E-7", which is what pydantic made of `str(Decimal)`)."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        result = await client.call_tool(
            "get_usage", {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z", "group_by": "agent"}
        )
    assert not result.is_error, result.content[0].text
    usage = result.structured_content

    def statement():
        response = api(ws.tenant, ws.tokens["viewer"]).get("/api/v1/usage/statement?month=2026-01&format=json")
        assert response.status_code == 200, response.content
        return response.json()

    body = await in_db(statement)
    assert body["totals"]["cost_usd"] == "0.00000010"
    assert Decimal(usage["cost_usd"]) == Decimal(body["totals"]["cost_usd"])
    # Shown alike: the same text for the same figure, in the totals and in the group.
    assert usage["cost_usd"] == body["totals"]["cost_usd"], usage["cost_usd"]
    assert usage["groups"][0]["cost_usd"] == body["lines"][0]["cost_usd"], usage["groups"][0]["cost_usd"]


async def test_approve_run_refuses_a_requested_at_that_is_a_number_as_the_api_does(mcp_port, ws, in_db):
    """`requested_at` is declared `{"type": "string", "format": "date-time"}` in the tool's input
    schema, and docs/mcp.md says "Types are taken as the schema states them" ("a number is no
    time"); an argument that misses the schema is `argument_invalid`, as the API refuses a number
    for the same field (400 invalid `requested_at`), rather than read as a Unix timestamp and
    compared with the approval's time."""
    run_id = str(uuid.uuid4())

    def over_api():
        # The API refuses the body before it looks at the run only for a run that exists, so look
        # at its serializer directly: the number is no `requested_at` there.
        from apps.runs.apis import DecisionInput

        data = DecisionInput(data={"requested_at": 1767225600})
        return data.is_valid(), dict(data.errors)

    valid, errors = await in_db(over_api)
    assert not valid and "requested_at" in errors
    async with mcp_client(mcp_port, ws.slug, ws.tokens["operator"]) as client:
        result = await client.call_tool("approve_run", {"run_id": run_id, "requested_at": 1767225600})
    assert tool_error(result).startswith("argument_invalid: requested_at"), tool_error(result)


@pytest.mark.parametrize(
    ("arguments", "code", "position"),
    [
        ({"filter": "status = bogus"}, "invalid_value", 9),
        ({"filter": "nope = 1"}, "unknown_field", 0),
        ({"filter": "status = (queued"}, "syntax_error", 16),  # its message says where already: once
        ({"order_by": "created_at, nope"}, "unknown_order_field", 12),
    ],
)
async def test_a_refused_filter_or_order_names_its_position_as_the_api_does(
    mcp_port, ws, in_db, arguments, code, position
):
    """docs/mcp.md: filter and paging codes come "with the position in the filter, as on the
    API"; only syntax_error's message said where, every other code lost it."""
    params = "&".join(f"{k}={v}" for k, v in arguments.items())
    answered = (await in_db(lambda: api(ws.tenant, ws.tokens["viewer"]).get(f"/api/v1/runs?{params}"))).json()
    assert (answered["error"]["code"], answered["error"].get("position")) == (code, position), answered
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        text = tool_error(await client.call_tool("list_runs", arguments))
    assert text.startswith(f"{code}: ") and text.count(f"position {position}") == 1, text
