"""Values followed from a model's tool call (the scripted provider, and the OpenAI-compatible one
against a local HTTP server) to the tool, its result back to the model, and through a crash
recovery's replay: carried as written, or refused with a word to the model, never changed on the
way without one (docs/runs.md, "Tool calls")."""

import json

from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, openai_completion
from tests.runs.conftest import (
    FINANCE,
    SUBAGENT,
    advance,
    advance_dying_after_record,
    agent_yaml,
    deploy,
    http_tool,
)
from tests.runs.test_api import client, post
from tests.runtime.conftest import Server, reply


def _sent(step: Step) -> dict:
    """The JSON body the ledger service received, as its answer (the tool's result) echoes it."""
    return json.loads(json.loads(step.replay["content"])["body"]["body"])


def _openai_run(acme, ledger, model_server, arguments_json: str):
    agent = deploy(acme, FINANCE, agent_yaml(provider="openai", tools=http_tool(ledger.port)))
    model_server.queue(
        Reply(body=openai_completion(tool_calls=[("call_a", "ledger", arguments_json)])),
        Reply(body=openai_completion("done")),
    )
    with schema_context("acme"):
        return run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="Book it.")


def _tool_step(run) -> Step:
    with schema_context("acme"):
        return Step.objects.get(run=run, node="tool")


def test_a_run_recovered_after_a_model_call_with_a_large_float_argument_finishes(
    acme, ledger, loopback_allowed, model_server, monkeypatch
):
    """A model's tool call `{"amount": 1e20}`, replayed after the worker was lost: its replay record
    (jsonb) gave 1e20 back as the integer 100000000000000000000, past the 64 bits a checkpoint
    holds, and the recovered run ended `failed / internal_error`. The answer is kept as its JSON
    text now, and the float reaches the service as the number it is."""
    run = _openai_run(acme, ledger, model_server, '{"id": "1", "amount": 1e20}')
    advance_dying_after_record(run, monkeypatch, 1)  # model step 1 recorded, not checkpointed
    run = advance(run, "acme")
    assert (run.status, run.reason) == ("succeeded", ""), (run.reason, run.message)
    assert _sent(_tool_step(run))["amount"] == 1e20


def test_a_scripted_number_the_database_cannot_keep_exactly_is_refused_not_rewritten(acme, ledger, loopback_allowed):
    """A run's script is kept in a jsonb column, which gives 1e20 back as an integer past 64 bits:
    the service was sent `"amount": "100000000000000000000"`, a string where the script held a
    number. Refused now, the model told (`tool_argument_invalid`), nothing sent."""
    deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1", "amount": 1e20}}}, {"respond": "done"}]
    response = post(client(acme), "/api/v1/runs", {"agent": "clerk", "input": "Book.", "script": script})
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        run = advance(Run.objects.get(pk=response.json()["id"]), "acme")
    step = _tool_step(run)
    assert (step.status, step.error) == ("error", "tool_argument_invalid") and not ledger.booked


def test_a_model_integer_argument_past_64_bits_is_not_sent_to_the_tool_as_text(
    acme, ledger, loopback_allowed, model_server
):
    """A model's `{"qty": 123456789012345678901234567890123}` (a JSON number) reached the service
    as the string "123456789012345678901234567890123", without a word to anyone. Refused now
    (`tool_argument_invalid`, the model told why), nothing sent; so are NaN and infinities."""
    arguments = '{"id": "1", "qty": 123456789012345678901234567890123}'
    run = advance(_openai_run(acme, ledger, model_server, arguments), "acme")
    step = _tool_step(run)
    assert (step.status, step.error) == ("error", "tool_argument_invalid") and not ledger.booked
    assert run.status == "succeeded", run.message  # the model was told, and answered


def test_numbers_in_an_http_tool_json_answer_reach_the_model_as_the_service_wrote_them(acme, loopback_allowed):
    """The service's JSON body is carried as it wrote it: parsed and written back with Python floats,
    `{"amount": 12345678901234567.89}` reached the model as `1.2345678901234568e+16`."""
    server = Server()
    body = b'{"amount": 12345678901234567.89}'
    server.routes["/entries/1"] = reply(body=body, content_type="application/json")
    try:
        deploy(acme, FINANCE, agent_yaml(tools=http_tool(server.port)))
        script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}]  # then the fallback answer
        response = post(client(acme), "/api/v1/runs", {"agent": "clerk", "input": "Book.", "script": script})
        assert response.status_code == 201, response.content
        with schema_context("acme"):
            run = advance(Run.objects.get(pk=response.json()["id"]), "acme")
    finally:
        server.close()
    assert run.status == "succeeded", run.message
    content = _tool_step(run).replay["content"]  # what the model was given
    assert "12345678901234567.89" in content, content


def test_a_sub_agent_call_with_an_argument_its_schema_forbids_is_refused_not_dropped(acme):
    """A sub-agent's schema is `{input}` with `additionalProperties: false`, as dis_query's is: an
    unknown argument is `tool_argument_unknown`, as there. The child started with the input alone,
    what the model meant it to know dropped without a word."""
    from tests.runs.conftest import HELPER_TESTS

    deploy(acme, FINANCE, agent_yaml("helper", limits=HELPER_TESTS))
    lead = deploy(acme, agent_yaml("lead", tools=SUBAGENT))
    script = [
        {"tool_call": {"tool": "ask_helper", "arguments": {"input": "What is AP?", "context": "INV-1001 is disputed"}}},
        {"respond": "done"},
    ]
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=lead, input="Delegate.", script=script)
    run = advance(run, "acme")
    step = _tool_step(run)
    with schema_context("acme"):
        children = list(Run.objects.filter(parent=run).values_list("input", flat=True))
    assert (step.status, step.error) == ("error", "tool_argument_unknown"), (step.status, step.error, children)
    assert children == []
