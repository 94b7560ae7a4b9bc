"""Runs over MCP, executed by a real Celery worker: to the end with progress, and through an
approval given or refused over MCP.

One test, in three acts: each xdist worker that ran a test of this module would start a Celery
worker of its own, which costs more than the runs."""

import anyio
import pytest

from tests.conftest import audit_events
from tests.mcp.conftest import mcp_client, token_prefix, tool_error, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio

SMALL = "Triage invoice INV-1001."  # the manifest's test that runs through
LARGE = "Look up the 25,000 EUR invoice."  # the manifest's test whose call needs an approval
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def ws(django_db_setup, django_db_blocker, celery_worker_process):
    with django_db_blocker.unblock():
        return workspace_make(FINANCE, TRIAGE)


async def test_runs_over_mcp(mcp_port, ws, in_db):
    await a_run_to_the_end_reporting_progress(mcp_port, ws, in_db)
    await a_run_waiting_for_an_approval_an_operator_gives(mcp_port, ws, in_db)
    await a_call_rejected_is_not_made(mcp_port, ws, in_db)


async def finished(client, run_id: str, timeout: float = 30) -> dict:
    with anyio.fail_after(timeout):
        while True:
            run = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
            if run["status"] in FINISHED:
                return run
            await anyio.sleep(0.2)


async def a_run_to_the_end_reporting_progress(mcp_port, ws, in_db):
    token = ws.tokens["developer"]
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async with mcp_client(mcp_port, ws.slug, token) as client:
        result = await client.call_tool(
            "run_agent", {"agent": "invoice-triage", "input": SMALL, "wait_seconds": 30}, progress_callback=on_progress
        )
    run = result.structured_content
    assert (run["status"], run["output"], run["step_count"]) == (
        "succeeded",
        "INV-1001 (420.00 EUR, vendor low risk) can be approved.",
        3,
    )
    assert [(s["node"], s["tool"], s["status"]) for s in run["steps"]] == [
        ("model", "", "ok"),
        ("tool", "find_invoices", "ok"),
        ("model", "", "ok"),
    ]
    assert progress[0] == (0, 30, "queued")
    assert all(total == 30 and 0 <= done <= 30 for done, total, _ in progress)
    events = await in_db(audit_events, ws.schema, action="run.start", data={"run": run["id"], "via": "mcp"})
    assert [(e.actor_id, e.request_id[:4]) for e in events] == [(f"token:{token_prefix(token)}", "mcp-")]


async def a_run_waiting_for_an_approval_an_operator_gives(mcp_port, ws, in_db):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["developer"]) as developer:
        started = await developer.call_tool(
            "run_agent", {"agent": "invoice-triage", "input": LARGE, "wait_seconds": 30}
        )
    waiting = started.structured_content
    assert waiting["status"] == "waiting_approval"
    pending = waiting["pending_approval"]
    assert (pending["tool"], pending["arguments"], pending["decision"]) == (
        "find_invoices",
        {"amount": 25000},
        "pending",
    )
    run_id, step = waiting["id"], pending["step"]

    operator_token = ws.tokens["operator"]
    async with mcp_client(mcp_port, ws.slug, operator_token) as operator:
        stale = await operator.call_tool("approve_run", {"run_id": run_id, "step": step + 1})
        asked_again = await operator.call_tool(
            "approve_run", {"run_id": run_id, "step": step, "requested_at": "2000-01-01T00:00:00Z"}
        )
        approved = await operator.call_tool(
            "approve_run",
            {
                "run_id": run_id,
                "step": step,
                "requested_at": pending["requested_at"],
                "comment": "Checked with the vendor.",
            },
        )
        assert tool_error(stale) == (
            f"approval_stale: The run now waits at step {step}, not {step + 1}: look at that call before deciding."
        )
        assert tool_error(asked_again).startswith(f"approval_stale: The question at step {step} was asked again")
        assert approved.structured_content["status"] in {"queued", "running", "succeeded"}
        assert approved.structured_content["pending_approval"] is None
        done = await finished(operator, run_id)
    assert (done["status"], done["output"]) == ("succeeded", "The invoice was not looked up.")
    assert [(a["step"], a["decision"], a["approver"], a["comment"]) for a in done["approvals"]] == [
        (step, "approved", f"API token {token_prefix(operator_token)} (mcp-operator)", "Checked with the vendor.")
    ]
    assert [(s["tool"], s["status"]) for s in done["steps"] if s["node"] == "tool"] == [("find_invoices", "ok")]
    events = await in_db(audit_events, ws.schema, action="run.approve", data={"run": run_id})
    assert [(e.actor_id, e.data["step"], e.data["comment"]) for e in events] == [
        (f"token:{token_prefix(operator_token)}", step, "Checked with the vendor.")
    ]


async def a_call_rejected_is_not_made(mcp_port, ws, in_db):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["owner"]) as client:
        waiting = await client.call_tool("run_agent", {"agent": "invoice-triage", "input": LARGE, "wait_seconds": 30})
        run_id = waiting.structured_content["id"]
        assert waiting.structured_content["status"] == "waiting_approval"
        rejected = await client.call_tool("reject_run", {"run_id": run_id, "comment": "Too large."})
        assert not rejected.is_error, rejected
        done = await finished(client, run_id)
    assert done["status"] == "succeeded"
    assert [(a["decision"], a["comment"]) for a in done["approvals"]] == [("rejected", "Too large.")]
    assert [(s["tool"], s["status"]) for s in done["steps"] if s["node"] == "tool"] == [("find_invoices", "rejected")]
    assert len(await in_db(audit_events, ws.schema, action="run.reject", data={"run": run_id})) == 1
