"""Each tool against one shared workspace (finance v1, invoice-triage deployed, clerk published
twice, three queued runs, a usage ledger); the run lifecycle with a worker is test_runs.py."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from apps.billing.models import UsageRecord
from apps.billing.rls import current_tenant_id, usage_scope
from apps.catalog.models import Document, Kind
from apps.catalog.services import version_publish
from apps.runs.models import Approval, Run
from apps.runs.services import run_create
from tests.conftest import audit_events, tenant_user
from tests.mcp.conftest import mcp_client, token_prefix, tool_error, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE, agent_yaml

pytestmark = pytest.mark.anyio

CLERK_V2 = agent_yaml("clerk", limits="  limits:\n    max_steps: 5\n")
JANUARY = [  # agent, model, input, output, cached, day
    ("alpha", "m1", 100, 10, 0, 10),
    ("alpha", "m2", 50, 5, 20, 20),
    ("beta", "m1", 30, 3, 0, 25),
]


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ws = workspace_make(FINANCE, TRIAGE)
        owner = tenant_user(ws.tenant, f"owner@{ws.slug}.test")
        with schema_context(ws.schema):
            for source in (agent_yaml("clerk"), CLERK_V2):
                version_publish(actor=owner, source=source, message="clerk")
            triage = Document.objects.get(kind=Kind.AGENT, name="invoice-triage")
            runs = [run_create(agent=triage, input=f"Invoice {n}.", created_by="test") for n in range(3)]
            for agent, model, input_tokens, output_tokens, cached, day in JANUARY:
                # Half as many tokens written to the cache as read from it: a fourth kind, summed alike.
                when = datetime(2026, 1, day, 12, tzinfo=UTC)
                _usage(agent, model, input_tokens, output_tokens, cached, when, cache_write=cached // 2)
            _usage("alpha", "m1", 1000, 100, 0, datetime(2026, 2, 3, tzinfo=UTC))
            _usage("gamma", "m3", 7, 1, 0, datetime.now(UTC))
    return ws, [run.pk for run in runs]


def _usage(agent, model, input_tokens, output_tokens, cached, when, cache_write=0):
    # m1 was priced when these calls were made (apps/billing prices them when written); m2 never was.
    tenant_id = current_tenant_id()
    with usage_scope(tenant_id):
        UsageRecord.objects.create(
            tenant_id=tenant_id,
            cost_usd=Decimal("0.001") if model == "m1" else None,
            project="p",
            agent=agent,
            provider="scripted",
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached,
            cache_write_tokens=cache_write,
            latency_ms=1.0,
            created_at=when,
        )


async def test_it_lists_agents_by_filter_and_gets_one(mcp_port, ws):
    ws, _ = ws
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        listed = await client.call_tool("list_agents", {"filter": 'name = "invoice-*"'})
        paged = await client.call_tool("list_agents", {"page_size": 1})
        agent = await client.call_tool("get_agent", {"name": "invoice-triage"})
        missing = await client.call_tool("get_agent", {"name": "nope"})
    assert [(a["name"], a["live_version"], a["domain"]) for a in listed.structured_content["agents"]] == [
        ("invoice-triage", 1, "finance@1")
    ]
    assert [a["name"] for a in paged.structured_content["agents"]] == ["clerk"]
    assert paged.structured_content["next_page_token"]
    detail = agent.structured_content
    assert (detail["latest_version"], detail["live_version"], detail["source"]) == (1, 1, TRIAGE)
    assert [v["number"] for v in detail["versions"]] == [1]
    assert tool_error(missing) == "agent_not_found: There is no agent 'nope'."


async def test_it_validates_a_manifest_and_names_each_problem(mcp_port, ws):
    ws, _ = ws
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        good = await client.call_tool("validate_manifest", {"content": TRIAGE})
        bad = await client.call_tool("validate_manifest", {"content": TRIAGE.replace("version: 1", "version: 7")})
    assert good.structured_content == {"valid": True, "kind": "agent", "name": "invoice-triage", "problems": []}
    assert bad.structured_content["valid"] is False
    assert [(p["code"], p["line"]) for p in bad.structured_content["problems"]] == [("dis_version_not_found", 13)]


async def test_it_deploys_a_version_once_and_records_who_did(mcp_port, ws, in_db):
    ws, _ = ws
    token = ws.tokens["developer"]
    async with mcp_client(mcp_port, ws.slug, token) as client:
        first = await client.call_tool("deploy_agent", {"name": "clerk", "version": 1})
        again = await client.call_tool("deploy_agent", {"name": "clerk", "version": 1})
        unknown = await client.call_tool("deploy_agent", {"name": "clerk", "version": 9})
        nobody = await client.call_tool("deploy_agent", {"name": "nobody", "version": 1})
        second = await client.call_tool("deploy_agent", {"name": "clerk", "version": 2})
    deployed = first.structured_content
    assert (deployed["agent"], deployed["version"], deployed["domain"], deployed["created"]) == (
        "clerk",
        1,
        {"name": "finance", "version": 1},
        True,
    )
    assert deployed["deployed_by"] == f"API token {token_prefix(token)} (mcp-developer)"
    assert (again.structured_content["id"], again.structured_content["created"]) == (deployed["id"], False)
    assert tool_error(unknown) == "version_not_found: clerk has no version 9."
    assert tool_error(nobody) == "agent_not_found: There is no agent 'nobody'."
    assert (second.structured_content["version"], second.structured_content["created"]) == (2, True)

    events = await in_db(audit_events, ws.schema, action="agent.deploy", data={"agent": "clerk", "via": "mcp"})
    assert [(e.actor_id, e.data["version"], e.outcome) for e in events] == [
        (f"token:{token_prefix(token)}", 1, "success"),
        (f"token:{token_prefix(token)}", 2, "success"),
    ]
    assert all(e.request_id.startswith("mcp-") for e in events)


async def test_it_reads_a_domain_whole_or_one_entity_of_a_version(mcp_port, ws):
    ws, _ = ws
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        latest = await client.call_tool("query_dis", {"domain": "finance"})
        invoice = await client.call_tool("query_dis", {"domain": "finance", "version": 1, "entity": "invoice"})
        refused = [
            await client.call_tool("query_dis", arguments)
            for arguments in (
                {"domain": "finance", "entity": "order"},
                {"domain": "finance", "version": 2},
                {"domain": "hr"},
            )
        ]
    whole = latest.structured_content
    assert (whole["name"], whole["version"], whole["latest_version"]) == ("finance", 1, 1)
    assert [e["name"] for e in whole["entities"]] == ["vendor", "invoice", "payment"]
    assert [r["name"] for r in whole["relationships"]] == ["billed_by", "settles"]
    assert whole["relationships"][0]["from"] == "invoice"
    assert len(whole["rules"]) == 2 and set(whole["glossary"]) == {"AP", "three-way match"}
    one = invoice.structured_content
    assert [e["name"] for e in one["entities"]] == ["invoice"]
    assert one["entities"][0]["fields"]["currency"] == {
        "type": "enum",
        "values": ["EUR", "USD", "GBP"],
        "description": None,
        "required": False,
        "entity": None,
        "items": None,
    }
    assert [r["name"] for r in one["relationships"]] == ["billed_by", "settles"]
    assert [r["name"] for r in one["rules"]] == ["large-invoice-needs-approval"]
    assert [tool_error(r) for r in refused] == [
        "entity_not_found: finance v1 has no entity 'order': invoice, payment, vendor.",
        "version_not_found: finance has no version 2.",
        "domain_not_found: There is no domain 'hr'.",
    ]


async def test_it_sums_usage_of_a_period_by_agent_and_model(mcp_port, ws):
    ws, _ = ws
    january = {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        both = (await client.call_tool("get_usage", january)).structured_content
        by_model = (await client.call_tool("get_usage", {**january, "group_by": "model"})).structured_content
        by_agent = await client.call_tool("get_usage", {"start": "2026-01-01T00:00:00", "group_by": "agent"})
        this_month = (await client.call_tool("get_usage", {})).structured_content
        backwards = await client.call_tool("get_usage", {"start": january["end"], "end": january["start"]})
    assert (both["calls"], both["input_tokens"], both["output_tokens"], both["cached_tokens"]) == (3, 180, 18, 20)
    assert both["cache_write_tokens"] == 10
    assert [(g["model"], g["cache_write_tokens"]) for g in by_model["groups"]] == [("m1", 0), ("m2", 10)]
    assert (Decimal(both["cost_usd"]), both["unpriced_calls"]) == (Decimal("0.002"), 1)
    assert [(g["model"], Decimal(g["cost_usd"]), g["unpriced_calls"]) for g in by_model["groups"]] == [
        ("m1", Decimal("0.002"), 0),
        ("m2", Decimal("0"), 1),
    ]
    assert [(g["agent"], g["provider"], g["model"], g["calls"], g["input_tokens"]) for g in both["groups"]] == [
        ("alpha", "scripted", "m1", 1, 100),
        ("alpha", "scripted", "m2", 1, 50),
        ("beta", "scripted", "m1", 1, 30),
    ]
    assert [(g["agent"], g["model"], g["calls"], g["output_tokens"]) for g in by_model["groups"]] == [
        (None, "m1", 2, 13),
        (None, "m2", 1, 5),
    ]
    # A start without a zone is UTC; the end defaults to now (February's and today's rows count).
    assert [(g["agent"], g["model"], g["input_tokens"]) for g in by_agent.structured_content["groups"]] == [
        ("alpha", None, 1150),
        ("beta", None, 30),
        ("gamma", None, 7),
    ]
    assert [(g["agent"], g["input_tokens"]) for g in this_month["groups"]] == [("gamma", 7)]
    assert this_month["groups_truncated"] is False
    assert tool_error(backwards) == "period_invalid: The period's end must come after its start."


async def test_it_lists_runs_in_pages_and_gets_one(mcp_port, ws):
    ws, run_ids = ws
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        first = await client.call_tool("list_runs", {"filter": 'agent = "invoice-triage"', "page_size": 2})
        token = first.structured_content["next_page_token"]
        rest = await client.call_tool(
            "list_runs", {"filter": 'agent = "invoice-triage"', "page_size": 2, "page_token": token}
        )
        none = await client.call_tool("list_runs", {"filter": 'status = "succeeded"'})
        run = await client.call_tool("get_run", {"run_id": str(run_ids[0])})
        missing = await client.call_tool("get_run", {"run_id": str(uuid.UUID(int=1))})
    listed = [r["id"] for r in first.structured_content["runs"] + rest.structured_content["runs"]]
    assert listed == [str(pk) for pk in reversed(run_ids)]
    assert rest.structured_content["next_page_token"] == ""
    assert none.structured_content["runs"] == []
    detail = run.structured_content
    assert (detail["status"], detail["input"], detail["output"], detail["domain"]) == (
        "queued",
        "Invoice 0.",
        None,
        {"name": "finance", "version": 1},
    )
    assert (detail["steps"], detail["approvals"], detail["pending_approval"]) == ([], [], None)
    assert tool_error(missing) == f"run_not_found: There is no run {uuid.UUID(int=1)} in this workspace."


async def test_a_decision_on_a_run_that_does_not_wait_is_refused_and_changes_nothing(mcp_port, ws, in_db):
    ws, run_ids = ws
    async with mcp_client(mcp_port, ws.slug, ws.tokens["operator"]) as client:
        result = await client.call_tool("approve_run", {"run_id": str(run_ids[1]), "comment": "ok"})
    assert tool_error(result) == "run_not_waiting: The run is not waiting for an approval."
    assert await in_db(run_status, ws.schema, run_ids[1]) == "queued"
    assert await in_db(audit_events, ws.schema, action="run.approve") == []


def run_status(schema: str, run_id) -> str:
    with schema_context(schema):
        return Run.objects.get(pk=run_id).status


async def test_text_no_column_takes_is_refused_with_the_apis_code(mcp_port, ws):
    """A NUL in a name would reach PostgreSQL and fail as an internal error: refused up front."""
    ws, _ = ws
    calls = {
        "get_agent": {"name": "invoice\x00triage"},
        "deploy_agent": {"name": "invoice\x00triage", "version": 1},
        "run_agent": {"agent": "invoice\x00triage", "input": "Hi."},
        "query_dis": {"domain": "fin\x00ance"},
    }
    async with mcp_client(mcp_port, ws.slug, ws.tokens["owner"]) as client:
        for name, arguments in calls.items():
            assert tool_error(await client.call_tool(name, arguments)).startswith("json_text_invalid: ")


def _waiting_after_many_approvals(schema: str) -> str:
    with schema_context(schema):
        run = run_create(agent=Document.objects.get(name="invoice-triage"), input="Pay them all.", created_by="t")
        Approval.objects.bulk_create(
            Approval(run=run, step=2 * n, tool="find_invoices", tool_call_id=f"c{n}", decision="approved",
                     approver="op", decided_at=datetime.now(UTC))
            for n in range(1, 202)
        )  # fmt: skip
        Approval.objects.create(run=run, step=404, tool="find_invoices", tool_call_id="c202")
        Run.objects.filter(pk=run.pk).update(status="waiting_approval", step_count=403)
        return str(run.pk)


async def test_get_run_names_the_pending_call_beyond_the_approvals_it_lists(mcp_port, ws, in_db):
    ws, _ = ws
    run_id = await in_db(_waiting_after_many_approvals, ws.schema)
    async with mcp_client(mcp_port, ws.slug, ws.tokens["operator"]) as client:
        detail = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
    assert len(detail["approvals"]) == 200  # the list is capped ...
    assert detail["pending_approval"]["step"] == 404  # ... the call the run waits for is not


async def test_an_argument_a_tool_does_not_declare_is_refused_and_changes_nothing(mcp_port, ws, in_db):
    """A misspelt argument is refused (`field_unknown`), as the API refuses a misspelt field —
    the call is not made as if it were left out; the tools' input schemas say so."""
    ws, _ = ws
    before = await in_db(run_count, ws.schema)
    async with mcp_client(mcp_port, ws.slug, ws.tokens["owner"]) as client:
        result = await client.call_tool("run_agent", {"agent": "invoice-triage", "input": "Hi.", "wait_second": 5})
        tools = (await client.list_tools()).tools
    assert tool_error(result).startswith("field_unknown: Not arguments of run_agent: wait_second;")
    assert await in_db(run_count, ws.schema) == before
    assert {tool.name: tool.input_schema.get("additionalProperties") for tool in tools} == {
        tool.name: False for tool in tools
    }


def run_count(schema: str) -> int:
    with schema_context(schema):
        return Run.objects.count()
