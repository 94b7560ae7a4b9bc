"""Values a model, a remote service or a client controls, which must never end a run (or a
request) on an internal error: a tool name of any length, integers past 64 bits, a charset no
codec decodes with replacement, lone surrogates in a sub-agent's input, a body past the upload
limit; and cancelling reaches every descendant run."""

import json

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_cancel, run_create
from foundry.errors import ServiceError
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy, http_tool
from tests.runs.test_api import client, post
from tests.runtime.conftest import Server, reply


def _start(acme, script):
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": "hi", "script": script})
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        return Run.objects.get(pk=response.json()["id"])


def test_a_call_to_an_unknown_tool_with_a_long_name_is_a_tool_error_not_an_internal_error(acme, triage):
    run = advance(_start(acme, [{"tool_call": {"tool": "x" * 64, "arguments": {}}}, {"respond": "done"}]), "acme")
    assert (run.status, run.reason) == ("succeeded", ""), (run.reason, run.message)
    with schema_context("acme"):
        tool = Step.objects.get(run=run, node="tool")
    assert (tool.status, tool.error) == ("error", "tool_unknown")


def test_a_tool_call_with_a_big_integer_argument_does_not_kill_the_run(acme, triage):
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {"question": 2**64}}}, {"respond": "done"}]
    run = advance(_start(acme, script), "acme")
    assert (run.status, run.reason) == ("succeeded", ""), run.message
    with schema_context("acme"):
        tool = Step.objects.get(run=run, node="tool")
    assert tool.arguments == {"question": str(2**64)}  # msgpack ends at 64 bits, jsonb has no NaN: as text


def test_an_oversized_start_request_gets_the_api_json_error_shape(acme, triage):
    script = [{"respond": "x" * 100_000} for _ in range(50)]
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": "hi", "script": script})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json"), response.content[:120]
    assert json.loads(response.content)["error"]["code"] == "request_too_large"
    with schema_context("acme"):
        assert not Run.objects.exists()


def test_cancelling_a_run_cancels_a_waiting_grandchild_under_a_finished_child(acme, triage):
    with schema_context("acme"):
        live = triage.live
        common = {
            "agent": triage, "deployment": live, "version": live.version, "domain_version": live.domain_version,
            "project": "p", "provider": "scripted", "model": "scripted-1", "created_by": "test",
        }  # fmt: skip
        parent = Run.objects.create(**common, input="a", status="running", started_at=timezone.now())
        child = Run.objects.create(
            **common, input="b", parent=parent, parent_step=2, status="succeeded", finished_at=timezone.now()
        )
        grandchild = Run.objects.create(**common, input="c", parent=child, parent_step=2, status="waiting_approval")
        Approval.objects.create(run=grandchild, step=2, tool="find_invoices", tool_call_id="c1", arguments={})
        run_cancel(actor=tenant_user(acme, "owner@acme.test"), run=parent)
        grandchild.refresh_from_db()
        assert grandchild.status == "cancelled"
        assert Approval.objects.get(run=grandchild).decision == "cancelled"


def test_a_service_answering_with_an_odd_charset_does_not_kill_the_run(acme, loopback_allowed):
    server = Server()
    server.routes["/entries/1"] = reply(body=b"\xffok", content_type="text/plain; charset=idna")
    try:
        deploy(acme, FINANCE, agent_yaml(tools=http_tool(server.port)))
        script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "done"}]
        response = post(client(acme), "/api/v1/runs", {"agent": "clerk", "input": "Book.", "script": script})
        assert response.status_code == 201, response.content
        with schema_context("acme"):
            run = Run.objects.get(pk=response.json()["id"])
        run = advance(run, "acme")
    finally:
        server.close()
    assert (run.status, run.reason) == ("succeeded", ""), run.message


def test_a_sub_agent_input_with_a_lone_surrogate_is_refused_with_input_invalid(acme, triage):
    with schema_context("acme"), pytest.raises(ServiceError) as info, transaction.atomic():
        run_create(agent=triage, input="What is AP? \ud800", created_by="run test")
    assert info.value.code == "input_invalid"
