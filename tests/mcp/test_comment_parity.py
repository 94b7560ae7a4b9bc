"""A comment is checked the same way over MCP as over the API and the console: at most 2,000
characters once surrounding spaces are removed (MCP checked the raw text, and refused a padded
one with a raw validation error)."""

import pytest
from django_tenants.utils import schema_context

from apps.catalog.models import Document
from apps.runs.models import Approval
from tests.mcp.conftest import in_db, mcp_client, workspace_make  # noqa: F401 - fixture
from tests.runs.conftest import FINANCE, TRIAGE
from tests.runs.test_api import waiting_run

pytestmark = pytest.mark.anyio

COMMENT = "x" * 2000 + "\n"


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ws = workspace_make(FINANCE, TRIAGE)
        with schema_context(ws.schema):
            agent = Document.objects.get(name="invoice-triage")
        api_run = waiting_run(ws.tenant, agent)
        mcp_run = waiting_run(ws.tenant, agent)
    return ws, api_run, mcp_run


def _decision(schema, run_id):
    with schema_context(schema):
        approval = Approval.objects.get(run_id=run_id)
        return approval.decision, approval.comment


async def test_a_padded_2000_character_comment_is_taken_over_mcp_as_over_the_api(mcp_port, ws, in_db):  # noqa: F811
    ws, api_run, mcp_run = ws

    import httpx2

    response = httpx2.post(
        f"http://127.0.0.1:{mcp_port}/api/v1/runs/{api_run.pk}/approve",
        json={"comment": COMMENT, "step": 2},
        headers={"Host": f"{ws.slug}.localhost:{mcp_port}", "Authorization": f"Bearer {ws.tokens['admin']}"},
    )
    assert response.status_code == 200, response.text
    assert await in_db(_decision, ws.schema, api_run.pk) == ("approved", "x" * 2000)

    async with mcp_client(mcp_port, ws.slug, ws.tokens["admin"]) as client:
        result = await client.call_tool("approve_run", {"run_id": str(mcp_run.pk), "comment": COMMENT, "step": 2})
    assert not result.is_error, result.content[0].text[:300]
    assert await in_db(_decision, ws.schema, mcp_run.pk) == ("approved", "x" * 2000)
