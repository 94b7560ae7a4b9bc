"""What a real provider's answer makes of a run's usage and outcome.

Each test runs a deployed agent whose `openai`/`anthropic` model is a loopback server speaking
the vendor's wire format (tests/providers/fake_models.py), advanced here as a worker would."""

import pytest
from django_tenants.utils import schema_context

from apps.billing.models import UsageRecord
from apps.billing.rls import usage_scope
from apps.providers.services import credential_set
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import (
    Reply,
    anthropic_message,
    openai_completion,
    text,
    tool_use,
)
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"


def _run(acme, server, provider="openai"):
    base = server.origin + "/v1" if provider == "openai" else server.origin
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        credential_set(actor=owner, provider=provider, api_key=KEY, base_url=base)
    agent = deploy(acme, FINANCE, agent_yaml(provider=provider))
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    return advance(run, "acme")


def _ledger(acme, run) -> list[tuple]:
    with usage_scope(acme.pk):
        rows = UsageRecord.objects.filter(run_id=run.pk).order_by("step")
        return [(r.step, r.input_tokens, r.output_tokens, r.cached_tokens) for r in rows]


def test_a_reply_refused_as_malformed_still_records_the_tokens_the_provider_reported(acme, keys, server):
    """a model call whose HTTP 200 answer is refused by the parser (here: tool-call
    `arguments` that are not valid JSON — exactly what a reply cut at `finish_reason: length`
    carries) fails the run with `provider_bad_response`, and its step and usage-ledger row record
    0 input and 0 output tokens, although the endpoint reported (and the tenant's account was
    charged) 1,500 + 400 tokens. docs/runs.md: "Every model call writes one row to the usage
    ledger (… input, output and cached tokens …)"; PRODUCT.md: "every model call records tokens".
    Budgets and quotas (checked against the ledger) undercount exactly the most expensive calls."""
    body = openai_completion(
        tool_calls=[("call_1", "find_invoices", '{"question": "invoices over 10,000 from ac')],
        prompt_tokens=1500,
        completion_tokens=400,
        cached_tokens=1024,
        finish_reason="length",
    )
    server.queue(Reply(body=body))
    run = _run(acme, server)
    assert (run.status, run.reason) == ("failed", "model_failed"), run.message
    assert _ledger(acme, run) == [(1, 1500, 400, 1024)]


def test_an_answer_cut_at_the_output_limit_is_not_a_silent_success(acme, keys, server):
    """an OpenAI reply with `finish_reason: "length"` (the model hit max_output_tokens
    mid-answer) ends the run `succeeded` with the cut-off text as its output, and nothing the
    run or its steps keep says it was cut (finish_reason lives only in the AIMessage's
    response_metadata). A client reading `status: succeeded` takes half an answer for the
    agent's final answer. Same for Anthropic's `stop_reason: "max_tokens"` and OpenAI's
    `content_filter`."""
    server.queue(Reply(body=openai_completion("INV-7 should be", completion_tokens=300, finish_reason="length")))
    run = _run(acme, server)
    with schema_context("acme"):
        steps = list(run.steps.order_by("index").values("summary", "status", "error", "record"))
    said = repr(steps).lower() + (run.message or "").lower()
    assert (run.status, run.reason) == ("failed", "model_output_truncated"), (run.status, run.output, steps)
    assert "length" in said


def test_anthropic_max_tokens_stop_is_not_a_silent_success(acme, keys, server):
    """`stop_reason: "max_tokens"` ends the run `succeeded`
    with the cut-off text as its answer, and no step records why it stopped."""
    server.queue(Reply(body=anthropic_message(text("INV-7 should be"), stop_reason="max_tokens")))
    run = _run(acme, server, provider="anthropic")
    with schema_context("acme"):
        steps = list(run.steps.order_by("index").values("summary", "status", "error", "record"))
    said = repr(steps).lower() + (run.message or "").lower()
    assert (run.status, run.reason) == ("failed", "model_output_truncated"), (run.status, run.output, steps)
    assert "max_tokens" in said


def test_a_long_tool_call_id_from_the_endpoint_does_not_break_an_approval(acme, keys, server):
    """the openai/anthropic providers keep any non-empty tool-call id the endpoint sends,
    however long (OpenAIProvider._tool_calls / AnthropicProvider.reply bound nothing), but an
    approval stores it in `runs_approval.tool_call_id` (varchar 200). A gateway or local server
    sending a 300-character id for a call that needs approval makes the worker fail writing the
    Approval row (value too long) outside the engine's error handling: the run never reaches
    `waiting_approval` nor a coded failure."""
    server.queue(Reply(body=openai_completion(tool_calls=[("c" * 300, "find_invoices", {"question": "INV-7"})])))
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        credential_set(actor=owner, provider="openai", api_key=KEY, base_url=server.origin + "/v1")
    source = agent_yaml(provider="openai", approvals="  approvals:\n    tools: [find_invoices]\n")
    agent = deploy(acme, FINANCE, source)
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    try:
        run = advance(run, "acme")
    except Exception as exc:  # noqa: BLE001 — the worker itself must not fail
        pytest.fail(f"advancing the run raised {type(exc).__name__}: {exc}")
    assert run.status in ("waiting_approval", "failed"), (run.status, run.reason)
    assert run.reason != "internal_error", run.message


def test_an_answer_withheld_by_the_content_filter_is_not_a_success(acme, keys, server):
    """Azure OpenAI / OpenAI answer `finish_reason: "content_filter"` with
    `content: null` when the output was filtered. The provider turns that into an empty answer
    and the run ends `succeeded` with output "" — no reason, no trace of the filter. Fix as
    above (foundry/runtime/graph.py `AgentGraph._model_done` / OpenAIProvider.reply)."""
    server.queue(Reply(body=openai_completion(None, finish_reason="content_filter")))
    run = _run(acme, server)
    with schema_context("acme"):
        steps = list(run.steps.order_by("index").values("summary", "status", "error", "record"))
    said = repr(steps).lower() + (run.message or "").lower()
    assert (run.status, run.reason) == ("failed", "model_output_filtered"), (run.status, run.output, steps)
    assert "content_filter" in said


def _tools_run(acme, run) -> list[str]:
    with schema_context("acme"):
        return list(run.steps.filter(node="tool").values_list("tool", flat=True))


def test_the_tool_calls_of_an_answer_cut_at_the_output_limit_are_not_run(acme, keys, server):
    """A `tool_use` block of an answer that stopped at `max_tokens` may be incomplete (Anthropic
    says so; its input here is cut to {}): the run fails `model_output_truncated` and the call is
    not made, rather than a tool acting on half its arguments."""
    server.queue(
        Reply(body=anthropic_message(tool_use("toolu_a", "find_invoices", {}), stop_reason="max_tokens")),
        Reply(body=anthropic_message(text("done"))),
    )
    run = _run(acme, server, provider="anthropic")
    assert (run.status, run.reason) == ("failed", "model_output_truncated"), run.message
    assert _tools_run(acme, run) == []


@pytest.mark.parametrize(
    "finish_reason, reason", [("length", "model_output_truncated"), ("content_filter", "model_output_filtered")]
)
def test_the_tool_calls_of_a_cut_or_withheld_openai_answer_are_not_run(acme, keys, server, finish_reason, reason):
    """OpenAI's `finish_reason` "length" or "content_filter" beside well-formed tool calls: the
    run ends with the reason, and none of the calls is made."""
    server.queue(
        Reply(
            body=openai_completion(
                tool_calls=[("call_1", "find_invoices", {"question": "INV"})], finish_reason=finish_reason
            )
        ),
        Reply(body=openai_completion("done")),
    )
    run = _run(acme, server)
    assert (run.status, run.reason) == ("failed", reason), run.message
    assert _tools_run(acme, run) == []


# The model's text beside its tool call holds a lone UTF-16 surrogate (`\ud800`): valid JSON, which
# json.loads turns into a str no UTF-8 encoder takes. Spelled as raw bytes so the escape is sent as is.
OPENAI_TEXT_WITH_SURROGATE = (
    b'{"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": '
    b'{"role": "assistant", "content": "Looking up INV-7 \\ud800", "tool_calls": [{"id": "call_a", '
    b'"type": "function", "function": {"name": "find_invoices", "arguments": "{}"}}]}}], '
    b'"usage": {"prompt_tokens": 10, "completion_tokens": 5}}'
)
ANTHROPIC_TEXT_WITH_SURROGATE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "c", "stop_reason": "tool_use", '
    b'"content": [{"type": "text", "text": "Looking up INV-7 \\ud800"}, '
    b'{"type": "tool_use", "id": "toolu_a", "name": "find_invoices", "input": {}}], '
    b'"usage": {"input_tokens": 10, "output_tokens": 5}}'
)


def test_openai_a_lone_surrogate_in_the_answers_text_does_not_end_the_run_on_an_internal_error(acme, keys, server):
    """A lone surrogate in the message's text is cleaned as a tool call's are (U+FFFD, docs/runs.md):
    kept in the conversation, the next request could not be encoded, and the run ended
    `internal_error`."""
    server.queue(Reply(body=OPENAI_TEXT_WITH_SURROGATE), Reply(body=openai_completion("done")))
    run = _run(acme, server, "openai")
    assert run.reason != "internal_error", (run.status, run.reason, run.message)
    assert len(server.requests) == 2, "the second model call was never sent"


def test_anthropic_a_lone_surrogate_in_a_text_block_does_not_end_the_run_on_an_internal_error(acme, keys, server):
    """As for OpenAI, a text block's `text`."""
    server.queue(Reply(body=ANTHROPIC_TEXT_WITH_SURROGATE), Reply(body=anthropic_message(text("done"))))
    run = _run(acme, server, "anthropic")
    assert run.reason != "internal_error", (run.status, run.reason, run.message)
    assert len(server.requests) == 2, "the second model call was never sent"


def _blank_text_blocks(request) -> list:
    return [
        (message["role"], block)
        for message in request.json["messages"]
        for block in message["content"]
        if block.get("type") == "text" and not block["text"].strip()
    ]


def test_anthropic_whitespace_text_before_a_tool_use_is_not_sent_back(acme, keys, server):
    """Claude may write a text block of only whitespace ("\n\n") beside its tool_use; the Messages
    API refuses a request carrying one (400), so it is not sent back."""
    server.queue(
        Reply(body=anthropic_message(text("\n\n"), tool_use("toolu_a", "find_invoices", {"question": "INV-7"}))),
        Reply(body=anthropic_message(text("INV-7 is fine."))),
    )
    run = _run(acme, server, provider="anthropic")
    assert len(server.requests) == 2, (run.status, run.reason, run.message)
    assert _blank_text_blocks(server.requests[1]) == []


def test_openai_finish_reason_tool_calls_without_a_tool_call_is_not_an_empty_success(acme, keys, server):
    """`finish_reason: "tool_calls"` without a tool call (a local server's tool parser failed on
    it): `provider_bad_response`, not an empty answer that ends the run succeeded."""
    server.queue(Reply(body=openai_completion("", finish_reason="tool_calls")))
    run = _run(acme, server)
    with schema_context("acme"):
        errors = list(run.steps.filter(node="model").values_list("error", flat=True))
    assert (run.status, run.reason) == ("failed", "model_failed"), (run.status, run.output)
    assert errors == ["provider_bad_response"]
