"""Model history (django-auditlog) of changes made through MCP names the caller the way the trail
does (`token:<prefix>`) and carries the call's request id as `cid` (docs/audit.md, "Model
history"), as the REST twins of the same tools do — no Django middleware runs for /mcp."""

import pytest
from auditlog.models import LogEntry
from django_tenants.utils import schema_context

from apps.catalog.models import Deployment, Document
from apps.catalog.services import version_publish
from apps.runs.models import Approval, Run
from apps.runs.services import run_create
from tests.conftest import tenant_user
from tests.mcp.conftest import mcp_client, token_prefix, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE, agent_yaml

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ws = workspace_make(FINANCE, TRIAGE)
        owner = tenant_user(ws.tenant, f"owner@{ws.slug}.test")
        with schema_context(ws.schema):
            version_publish(actor=owner, source=agent_yaml("clerk"), message="clerk")
    return ws


def _history(schema: str, model, **filters) -> list[tuple]:
    with schema_context(schema):
        instance = model.objects.get(**filters)
        return [
            (e.action, e.additional_data, e.cid)
            for e in LogEntry.objects.get_for_object(instance).order_by("timestamp", "pk")
        ]


def _waiting_run(schema: str) -> str:
    with schema_context(schema):
        run = run_create(agent=Document.objects.get(name="invoice-triage"), input="Pay it.", created_by="t")
        Approval.objects.create(run=run, step=2, tool="find_invoices", tool_call_id="c1")
        Run.objects.filter(pk=run.pk).update(status="waiting_approval", step_count=2)
        return str(run.pk)


async def test_a_deployment_made_over_mcp_is_history_of_the_token(mcp_port, ws, in_db):
    token = ws.tokens["developer"]
    async with mcp_client(mcp_port, ws.slug, token) as client:
        result = await client.call_tool("deploy_agent", {"name": "clerk", "version": 1})
    assert not result.is_error, result.content[0].text
    deployment_id = result.structured_content["id"]
    ((action, data, cid),) = await in_db(_history, ws.schema, Deployment, pk=deployment_id)
    assert action == LogEntry.Action.CREATE
    assert data == {"actor": f"token:{token_prefix(token)}"}, data
    assert cid and cid.startswith("mcp-"), cid


async def test_an_approval_decided_over_mcp_is_history_of_the_token(mcp_port, ws, in_db):
    token = ws.tokens["operator"]
    run_id = await in_db(_waiting_run, ws.schema)
    async with mcp_client(mcp_port, ws.slug, token) as client:
        result = await client.call_tool("approve_run", {"run_id": run_id, "step": 2, "comment": "ok"})
    assert not result.is_error, result.content[0].text
    entries = await in_db(_history, ws.schema, Approval, run_id=run_id)
    action, data, cid = entries[-1]
    assert action == LogEntry.Action.UPDATE
    assert data == {"actor": f"token:{token_prefix(token)}"}, data
    assert cid and cid.startswith("mcp-"), cid
