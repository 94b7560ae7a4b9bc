"""The `anthropic` provider against a real HTTP server on loopback speaking the Messages API."""

import json
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from foundry.runtime import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderError, ProviderSettings, ToolSpec, provider_create
from tests.providers.fake_models import FakeModelServer, Reply, anthropic_message, text, tool_use

KEY = "sk-ant-api03-Hk2Jd8sLq0Wm4Nz7Xc1Vb5"
LOOPBACK = NetworkPolicy(allow_private=True)
LOOKUP = ToolSpec("lookup", "Look an invoice up.", {"type": "object", "properties": {"id": {"type": "string"}}})
CONVERSATION = [SystemMessage(content="You triage invoices."), HumanMessage(content="Triage INV-7.")]


@pytest.fixture
def model_server():
    server = FakeModelServer()
    yield server
    server.close()


def anthropic(server, *, policy=LOOPBACK, parameters=None, model="claude-test", **credentials):
    credentials = {"api_key": KEY, "base_url": server.origin, "max_retries": 2, **credentials}
    settings = ProviderSettings(model=model, parameters=parameters or {}, credentials=credentials, network=policy)
    return provider_create("anthropic", settings)


def refused(provider, *, messages=CONVERSATION, tools=(), timeout=None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.complete(messages, tools, timeout=timeout)
    assert KEY not in info.value.message and KEY[-10:] not in info.value.message
    return info.value


def test_it_sends_the_system_prompt_turns_tools_parameters_and_key(model_server):
    model_server.queue(Reply(body=anthropic_message(text("Looking."), tool_use("toolu_01", "lookup", {"id": "INV-7"}))))
    parameters = {"temperature": 0.3, "top_k": 20, "max_output_tokens": 512, "stop": "END"}
    reply = anthropic(model_server, parameters=parameters).complete(CONVERSATION, [LOOKUP])

    (request,) = model_server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    # This SDK version sends an API key as a bearer token; never also as x-api-key.
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in request.headers
    assert request.headers["anthropic-version"]
    assert request.json == {
        "model": "claude-test",
        "max_tokens": 512,
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_k": 20,
        "system": "You triage invoices.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Triage INV-7."}]}],
        "tools": [
            {
                "name": "lookup",
                "description": "Look an invoice up.",
                "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
            }
        ],
    }
    assert reply.message.content == "Looking."
    assert reply.message.tool_calls == [
        {"name": "lookup", "args": {"id": "INV-7"}, "id": "toolu_01", "type": "tool_call"}
    ]
    assert reply.message.response_metadata["stop_reason"] == "tool_use"


def test_max_tokens_defaults_when_the_manifest_sets_none(model_server):
    model_server.queue(Reply(body=anthropic_message(text("ok"))))
    anthropic(model_server).complete(CONVERSATION, [])
    body = model_server.requests[0].json
    assert body["max_tokens"] == 4096
    assert "tools" not in body and "temperature" not in body


def test_tool_uses_and_results_go_back_as_blocks_in_alternating_turns(model_server):
    model_server.queue(Reply(body=anthropic_message(text("INV-7 is fine; INV-8 is unknown."))))
    conversation = [
        *CONVERSATION,
        AIMessage(
            content="Checking both.",
            tool_calls=[
                {"name": "lookup", "args": {"id": "INV-7"}, "id": "toolu_1"},
                {"name": "lookup", "args": {"id": "INV-8"}, "id": "toolu_2"},
            ],
        ),
        ToolMessage(content='{"amount": 420}', tool_call_id="toolu_1", name="lookup"),
        ToolMessage(content="Error (not_found): no INV-8", tool_call_id="toolu_2", name="lookup", status="error"),
    ]
    reply = anthropic(model_server).complete(conversation, [LOOKUP])
    assert model_server.requests[0].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"id": "INV-7"}},
                {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"id": "INV-8"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"amount": 420}'},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "Error (not_found): no INV-8",
                    "is_error": True,
                },
            ],
        },
    ]
    assert (reply.message.content, reply.message.tool_calls) == ("INV-7 is fine; INV-8 is unknown.", [])


def test_usage_counts_cache_reads_and_writes_as_input(model_server):
    body = anthropic_message(text("Hi."), input_tokens=40, output_tokens=6, cache_read=1000, cache_creation=200)
    model_server.queue(Reply(body=body))
    reply = anthropic(model_server).complete(CONVERSATION, [])
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (1240, 6, 1000)
    assert reply.usage.cache_write_tokens == 200  # priced apart from the input tokens they are part of
    assert reply.message.usage_metadata["input_token_details"] == {"cache_read": 1000}


def test_thinking_blocks_are_not_part_of_the_answer(model_server):
    thinking = {"type": "thinking", "thinking": "Let me see…", "signature": "sig"}
    model_server.queue(Reply(body=anthropic_message(thinking, text("Approved."))))
    assert anthropic(model_server).complete(CONVERSATION, []).message.content == "Approved."


def test_an_unknown_model_parameter_is_refused(model_server):
    with pytest.raises(ProviderError) as info:
        anthropic(model_server, parameters={"seed": 1})
    assert info.value.code == "provider_parameter_unsupported"


def test_missing_credentials_are_refused_clearly():
    with pytest.raises(ProviderError) as info:
        provider_create("anthropic", ProviderSettings(model="claude"))
    assert info.value.code == "provider_credentials_missing"


def test_the_platforms_anthropic_environment_is_not_used(model_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "platform-token-must-not-leak")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://192.0.2.1")
    model_server.queue(Reply(body=anthropic_message(text("ok"))))
    anthropic(model_server).complete(CONVERSATION, [])
    headers = model_server.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert "platform-token-must-not-leak" not in json.dumps(headers)


# --- errors ---------------------------------------------------------------------------------


def test_401_is_an_auth_failure_not_retried(model_server):
    model_server.queue(
        Reply(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    )
    error = refused(anthropic(model_server))
    assert error.code == "provider_auth_failed"
    assert len(model_server.requests) == 1


def test_429_is_retried_then_succeeds(model_server):
    limited = Reply(
        429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}, headers={"retry-after": "0"}
    )
    model_server.queue(limited, Reply(body=anthropic_message(text("done"))))
    assert anthropic(model_server).complete(CONVERSATION, []).message.content == "done"
    assert len(model_server.requests) == 2


def test_overloaded_529_is_retried_then_a_server_error(model_server):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    model_server.default = Reply(529, overloaded, headers={"retry-after": "0"})
    error = refused(anthropic(model_server, max_retries=2))
    assert error.code == "provider_server_error"
    assert error.message.endswith("(HTTP 529): Overloaded")
    assert len(model_server.requests) == 3


def test_a_400_quotes_the_endpoint_redacted(model_server):
    message = f"messages.0: bad request from key {KEY}"
    model_server.queue(Reply(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}}))
    error = refused(anthropic(model_server))
    assert error.code == "provider_request_refused"
    assert "messages.0: bad request from key [redacted]" in error.message


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        json.dumps({"type": "message", "content": "text, not blocks"}).encode(),
        json.dumps({**anthropic_message(text("x")), "usage": {}}).encode(),
        json.dumps(anthropic_message({"type": "tool_use", "id": "t", "name": "lookup", "input": "id=7"})).encode(),
        json.dumps(anthropic_message({"text": "no type"})).encode(),
    ],
    ids=["not-json", "content-not-blocks", "no-usage", "tool-input-not-object", "block-without-type"],
)
def test_a_malformed_body_is_a_bad_response(model_server, body):
    model_server.queue(Reply(body=body))
    assert refused(anthropic(model_server)).code == "provider_bad_response"


def test_a_slow_endpoint_times_out(model_server):
    model_server.default = Reply(body=anthropic_message(text("late")), delay=3)
    started = time.monotonic()
    assert refused(anthropic(model_server, timeout_seconds=0.3, max_retries=0)).code == "provider_timeout"
    assert time.monotonic() - started < 1.5
    assert len(model_server.requests) == 1


def test_loopback_is_refused_unless_the_policy_allows_it(model_server):
    error = refused(anthropic(model_server, policy=NetworkPolicy()))
    assert error.code == "provider_url_refused"
    assert model_server.requests == []


def test_link_local_metadata_stays_refused_even_with_private_addresses_allowed():
    credentials = {"api_key": KEY, "base_url": "http://169.254.169.254", "max_retries": 0}
    settings = ProviderSettings(model="claude", credentials=credentials, network=LOOPBACK)
    error = refused(provider_create("anthropic", settings))
    assert (error.code, "link-local" in error.message) == ("provider_url_refused", True)


def test_the_key_is_in_no_repr(model_server):
    provider = anthropic(model_server)
    assert KEY not in repr(provider) and KEY not in repr(provider.connection)


def test_an_agent_graph_runs_a_tool_calling_loop_with_the_anthropic_provider(model_server, invoice_triage, finance):
    model_server.queue(
        Reply(body=anthropic_message(tool_use("toolu_q", "find_invoices", {"question": "Rules?"}))),
        Reply(body=anthropic_message(text("INV-1001 can be approved."), cache_read=300)),
    )
    provider = anthropic(model_server, parameters=invoice_triage["spec"]["model"]["parameters"])
    result = AgentGraph(invoice_triage, finance, provider=provider).start("t", "Triage invoice INV-1001.")
    assert (result.status, result.output) == ("succeeded", "INV-1001 can be approved.")
    assert [s["node"] for s in result.steps] == ["model", "tool", "model"]
    assert result.steps[2]["cached_tokens"] == 300
    last_turn = model_server.requests[1].json["messages"][-1]
    assert last_turn["role"] == "user"
    assert last_turn["content"][0]["tool_use_id"] == "toolu_q"
    assert model_server.requests[0].json["temperature"] == 0
