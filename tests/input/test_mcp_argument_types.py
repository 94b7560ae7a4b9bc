"""MCP tool arguments of the wrong JSON type are taken and acted on: the input schemas say
`integer` and `date-time` (ISO 8601), but the SDK's lax pydantic validation turns `true` and "1"
into 1 and plain numbers (or strings of digits) into Unix timestamps."""

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Deployment, Document, Kind
from apps.catalog.services import agent_deploy, version_publish
from tests.conftest import tenant_user
from tests.input.test_lookalike_numbers import TRIAGE_V2
from tests.mcp.conftest import in_db, mcp_client, tool_error, workspace_make  # noqa: F401 (in_db: a fixture)
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    """finance v1; invoice-triage v1 and v2, v2 live (committed: the server sees it)."""
    with django_db_blocker.unblock():
        ws = workspace_make(FINANCE, TRIAGE)
        owner = tenant_user(ws.tenant, f"owner@{ws.slug}.test")
        with schema_context(ws.schema):
            published = version_publish(actor=owner, source=TRIAGE_V2, message="v2")
            agent_deploy(actor=owner, document=published.version.document, number=published.version.number)
    return ws


def _v2_live(schema: str) -> None:
    """Put v2 live again (a test before may have moved it)."""
    with schema_context(schema):
        document = Document.objects.get(kind=Kind.AGENT, name="invoice-triage")
        agent_deploy(actor="test", document=document, number=2)


def _live(schema: str) -> tuple[int, int]:
    with schema_context(schema):
        live = Document.objects.get(kind=Kind.AGENT, name="invoice-triage").live.version.number
        return live, Deployment.objects.count()


@pytest.mark.parametrize("version", [True, "1"])
async def test_deploy_agent_refuses_a_version_that_is_not_an_integer(mcp_port, ws, in_db, version):  # noqa: F811
    await in_db(_v2_live, ws.schema)
    before = await in_db(_live, ws.schema)
    assert before[0] == 2
    async with mcp_client(mcp_port, ws.slug, ws.tokens["owner"]) as client:
        result = await client.call_tool("deploy_agent", {"name": "invoice-triage", "version": version})
    # Observed: not an error; invoice-triage v1 is made live ({"version": 1, "created": true}).
    assert result.is_error, result.structured_content
    assert await in_db(_live, ws.schema) == before


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("list_agents", {"page_size": True}),
        ("query_dis", {"domain": "finance", "version": True}),
        ("query_dis", {"domain": "finance", "version": "1"}),
    ],
)
async def test_a_boolean_or_a_string_is_no_integer_argument(mcp_port, ws, tool, arguments):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        result = await client.call_tool(tool, arguments)
    # Observed: answered as if 1 had been sent.
    assert result.is_error, result.structured_content


@pytest.mark.parametrize(
    "arguments",
    [
        {"start": 0},  # observed: the period starts 1970-01-01T00:00:00Z
        {"start": "00000000000000000000000000000000"},  # observed: 1970-01-01T00:00:00Z
        {"start": 253402300800},  # 10000-01-01 in seconds; observed: read as milliseconds, 1978-01-11
        {"end": 2147483648},  # observed: 2038-01-19T03:14:08Z
    ],
)
async def test_get_usage_takes_iso_8601_only(mcp_port, ws, arguments):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        result = await client.call_tool("get_usage", arguments)
    assert result.is_error, result.structured_content
    assert "period_invalid" in tool_error(result) or "datetime" in tool_error(result)
