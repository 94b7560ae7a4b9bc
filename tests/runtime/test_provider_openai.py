"""The `openai` provider against a real HTTP server on loopback speaking chat completions."""

import json
import time
from types import SimpleNamespace

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from foundry.runtime import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.provider_http import Connection
from foundry.runtime.providers import ProviderError, ProviderSettings, ToolSpec, provider_create
from tests.providers.fake_models import FakeModelServer, Reply, openai_completion

KEY = "sk-test-Zq8LmN3pR7tV1wX5yB9c"
LOOPBACK = NetworkPolicy(allow_private=True)
LOOKUP = ToolSpec("lookup", "Look an invoice up.", {"type": "object", "properties": {"id": {"type": "string"}}})
CONVERSATION = [SystemMessage(content="You triage invoices."), HumanMessage(content="Triage INV-7.")]


@pytest.fixture
def model_server():
    server = FakeModelServer()
    yield server
    server.close()


def openai(server, *, policy=LOOPBACK, parameters=None, model="gpt-test", **credentials):
    credentials = {"api_key": KEY, "base_url": server.origin + "/v1", "max_retries": 2, **credentials}
    settings = ProviderSettings(model=model, parameters=parameters or {}, credentials=credentials, network=policy)
    return provider_create("openai", settings)


def refused(provider, *, messages=CONVERSATION, tools=(), timeout=None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.complete(messages, tools, timeout=timeout)
    assert KEY not in info.value.message and KEY[-12:] not in info.value.message
    return info.value


# --- requests and replies -------------------------------------------------------------------


def test_it_sends_the_conversation_tools_parameters_and_key(model_server):
    model_server.queue(Reply(body=openai_completion(tool_calls=[("call_abc", "lookup", {"id": "INV-7"})])))
    provider = openai(model_server, parameters={"temperature": 0.2, "max_output_tokens": 300, "seed": 7})
    reply = provider.complete(CONVERSATION, [LOOKUP])

    (request,) = model_server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert "openai-organization" not in request.headers and "openai-project" not in request.headers
    assert request.json == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You triage invoices."},
            {"role": "user", "content": "Triage INV-7."},
        ],
        "temperature": 0.2,
        "max_completion_tokens": 300,
        "seed": 7,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Look an invoice up.",
                    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
                },
            }
        ],
    }
    assert reply.message.content == ""
    assert reply.message.tool_calls == [
        {"name": "lookup", "args": {"id": "INV-7"}, "id": "call_abc", "type": "tool_call"}
    ]
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (30, 7, 0)


def test_tool_calls_and_results_go_back_in_the_wire_format(model_server):
    model_server.queue(Reply(body=openai_completion("INV-7 can be approved.", prompt_tokens=80, completion_tokens=9)))
    conversation = [
        *CONVERSATION,
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"id": "INV-7"}, "id": "call_abc"}]),
        ToolMessage(content='{"amount": 420}', tool_call_id="call_abc", name="lookup"),
    ]
    reply = openai(model_server).complete(conversation, [LOOKUP])
    messages = model_server.requests[0].json["messages"]
    assert messages[2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "lookup", "arguments": '{"id": "INV-7"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"amount": 420}'},
    ]
    assert (reply.message.content, reply.message.tool_calls) == ("INV-7 can be approved.", [])
    assert reply.message.response_metadata["finish_reason"] == "stop"


def test_usage_counts_cached_prompt_tokens(model_server):
    model_server.queue(
        Reply(body=openai_completion("Hi.", prompt_tokens=1200, completion_tokens=5, cached_tokens=1024))
    )
    reply = openai(model_server).complete(CONVERSATION, [])
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (1200, 5, 1024)
    assert reply.message.usage_metadata == {
        "input_tokens": 1200,
        "output_tokens": 5,
        "total_tokens": 1205,
        "input_token_details": {"cache_read": 1024},
    }
    assert reply.message.response_metadata["usage_estimated"] is False


def test_an_endpoint_without_usage_is_counted_with_the_offline_tokenizer(model_server):
    model_server.queue(Reply(body=openai_completion("abcdefgh", usage=False)))
    reply = openai(model_server).complete([HumanMessage(content="a" * 8)], [])
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (2, 2)
    assert reply.message.response_metadata["usage_estimated"] is True


def test_several_tool_calls_and_missing_ids_are_kept_apart(model_server):
    calls = [("", "lookup", {"id": "A"}), ("", "lookup", '{"id": "B"}'), ("same", "lookup", "")]
    model_server.queue(Reply(body=openai_completion(tool_calls=calls)))
    reply = openai(model_server).complete(CONVERSATION, [LOOKUP])
    assert [(c["id"], c["args"]) for c in reply.message.tool_calls] == [
        ("call_1_1", {"id": "A"}),
        ("call_1_2", {"id": "B"}),
        ("same", {}),
    ]


def test_the_organization_is_sent_and_the_platform_environment_is_not(model_server, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-of-the-platform")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-of-the-platform")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-platform-key-must-not-leak")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://192.0.2.1/v1")
    model_server.queue(Reply(body=openai_completion("ok")), Reply(body=openai_completion("ok")))
    openai(model_server, organization="org-tenant").complete(CONVERSATION, [])
    openai(model_server).complete(CONVERSATION, [])
    with_org, without = model_server.requests
    assert with_org.headers["openai-organization"] == "org-tenant"
    assert "openai-organization" not in without.headers
    assert all("openai-project" not in r.headers for r in model_server.requests)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in model_server.requests)


def test_ambient_custom_headers_are_refused_rather_than_sent(model_server, monkeypatch):
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Platform-Secret: 1")
    with pytest.raises(ProviderError) as info:
        openai(model_server)
    assert info.value.code == "provider_environment_unsafe"
    assert model_server.requests == []


def test_the_azure_variant_uses_the_deployment_path_api_version_and_api_key_header(model_server):
    model_server.queue(Reply(body=openai_completion("ok")), Reply(body=openai_completion("ok")))
    azure = {"base_url": model_server.origin, "api_version": "2024-10-21"}
    openai(model_server, deployment="triage-prod", **azure).complete(CONVERSATION, [])
    openai(model_server, model="gpt-4o", **azure).complete(CONVERSATION, [])  # no deployment: the model's name
    named, by_model = model_server.requests
    assert named.path == "/openai/deployments/triage-prod/chat/completions"
    assert by_model.path == "/openai/deployments/gpt-4o/chat/completions"
    for request in (named, by_model):
        assert request.query == {"api-version": "2024-10-21"}
        assert request.headers["api-key"] == KEY
        assert "authorization" not in request.headers


@pytest.mark.parametrize("model", ["../../files", "..", "gpt-4o?x=1", "gpt 4o"])
def test_an_azure_model_name_that_would_leave_its_deployment_path_is_refused(model_server, model):
    """Without a deployment set, Azure's requests go to the deployment named as the model, a segment
    of the URL's path that the SDK does not escape: a model name is no way to other paths of the
    resource with the workspace's key."""
    with pytest.raises(ProviderError) as info:
        openai(model_server, model=model, base_url=model_server.origin, api_version="2024-10-21")
    assert info.value.code == "provider_settings_invalid"
    assert model_server.requests == []


def test_vllm_and_ollama_style_base_urls_keep_their_path(model_server):
    model_server.queue(Reply(body=openai_completion("ok")))
    openai(model_server, base_url=model_server.origin + "/ollama/v1/").complete(CONVERSATION, [])
    assert model_server.requests[0].path == "/ollama/v1/chat/completions"


def test_an_unknown_model_parameter_is_refused_before_any_call(model_server):
    with pytest.raises(ProviderError) as info:
        openai(model_server, parameters={"temperature": 0, "top_k": 5})
    assert info.value.code == "provider_parameter_unsupported"
    assert "top_k" in info.value.message
    assert model_server.requests == []


def test_missing_credentials_are_refused_clearly():
    for credentials in (None, {}, {"api_key": "  "}, {"base_url": "https://api.example.com/v1"}):
        with pytest.raises(ProviderError) as info:
            provider_create("openai", ProviderSettings(model="gpt", credentials=credentials))
        assert info.value.code == "provider_credentials_missing"


# --- errors ---------------------------------------------------------------------------------


def test_401_is_an_auth_failure_not_retried_and_never_quotes_the_key(model_server):
    model_server.queue(Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    error = refused(openai(model_server))
    assert error.code == "provider_auth_failed"
    assert "HTTP 401" in error.message and "Incorrect" not in error.message
    assert len(model_server.requests) == 1


def test_429_is_retried_after_the_endpoints_retry_after_then_succeeds(model_server):
    slow = Reply(429, {"error": {"message": "Rate limit reached."}}, headers={"Retry-After": "0"})
    model_server.queue(slow, slow, Reply(body=openai_completion("finally")))
    reply = openai(model_server).complete(CONVERSATION, [])
    assert reply.message.content == "finally"
    assert len(model_server.requests) == 3
    assert [r.json for r in model_server.requests] == [model_server.requests[0].json] * 3


def test_429_beyond_the_retries_is_rate_limited_and_redacted(model_server):
    echo = f"Rate limit for key {KEY[:3]}…{KEY[-6:]} reached; partial {KEY[4:16]} too."
    model_server.queue(*[Reply(429, {"error": {"message": echo}}, headers={"retry-after-ms": "10"})] * 3)
    error = refused(openai(model_server))
    assert error.code == "provider_rate_limited"
    assert "rate limit or quota reached (retry after 0.01 s)" in error.message
    assert KEY[-6:] not in error.message and KEY[4:16] not in error.message and "[redacted]" in error.message
    assert len(model_server.requests) == 3


def test_a_retry_after_longer_than_the_run_has_left_ends_at_once(model_server):
    model_server.queue(Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "30"}))
    started = time.monotonic()
    error = refused(openai(model_server), timeout=5)
    assert error.code == "provider_rate_limited"
    assert time.monotonic() - started < 2
    assert len(model_server.requests) == 1


def test_an_endpoint_saying_not_to_retry_is_not_retried(model_server):
    model_server.queue(Reply(503, {"error": {"message": "down"}}, headers={"x-should-retry": "false"}))
    assert refused(openai(model_server)).code == "provider_server_error"
    assert len(model_server.requests) == 1


def test_500_is_retried_then_a_server_error(model_server):
    model_server.default = Reply(500, {"error": {"message": "The server had an error."}}, headers={"Retry-After": "0"})
    error = refused(openai(model_server, max_retries=1))
    assert error.code == "provider_server_error"
    assert error.message.endswith("failed (HTTP 500): The server had an error.")
    assert len(model_server.requests) == 2


def test_other_4xx_are_refused_requests_not_retried(model_server):
    model_server.queue(Reply(404, {"error": {"message": "The model `gpt-nope` does not exist."}}))
    error = refused(openai(model_server))
    assert error.code == "provider_request_refused"
    assert "(HTTP 404): The model `gpt-nope` does not exist." in error.message
    assert len(model_server.requests) == 1


def test_redirects_are_not_followed(model_server):
    model_server.queue(Reply(302, b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    error = refused(openai(model_server))
    assert error.code == "provider_bad_response"
    assert len(model_server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Bad gateway</html>",
        b"[1, 2]",
        json.dumps({"id": "x", "choices": []}).encode(),
        json.dumps({"choices": [{"message": {"content": 42}}]}).encode(),
        json.dumps(openai_completion(tool_calls=[("c1", "lookup", "{not json")])).encode(),
        json.dumps(openai_completion(tool_calls=[("c1", "", {})])).encode(),
    ],
    ids=["html", "array", "no-choices", "content-not-text", "arguments-not-json", "no-function-name"],
)
def test_a_malformed_body_is_a_bad_response(model_server, body):
    model_server.queue(Reply(body=body))
    assert refused(openai(model_server), tools=[LOOKUP]).code == "provider_bad_response"


def test_a_response_larger_than_the_policy_allows_is_refused(model_server):
    model_server.queue(Reply(body=openai_completion("x" * 5000)))
    policy = NetworkPolicy(allow_private=True, max_response_bytes=1000)
    assert refused(openai(model_server, policy=policy)).code == "provider_response_too_large"


def test_a_slow_endpoint_times_out_within_the_connections_timeout(model_server):
    model_server.default = Reply(body=openai_completion("late"), delay=3)
    started = time.monotonic()
    error = refused(openai(model_server, timeout_seconds=0.3, max_retries=1))
    elapsed = time.monotonic() - started
    assert error.code == "provider_timeout"
    assert len(model_server.requests) == 2  # a timeout is retried once
    assert elapsed < 2.5


def test_an_endpoint_trickling_its_answer_cannot_stretch_an_attempt(trickler):
    # A byte of header every 0.1 s restarts a per-read clock; the attempt still ends at its timeout.
    started = time.monotonic()
    error = refused(openai(SimpleNamespace(origin=trickler), timeout_seconds=0.5, max_retries=0))
    assert error.code == "provider_timeout"
    assert time.monotonic() - started < 2.0


def test_the_run_budget_bounds_every_attempt_and_the_retries(model_server):
    model_server.default = Reply(body=openai_completion("late"), delay=3)
    started = time.monotonic()
    error = refused(openai(model_server, max_retries=5), timeout=0.5)
    assert error.code == "provider_timeout"
    assert time.monotonic() - started < 1.5


def test_loopback_is_refused_unless_the_policy_allows_it(model_server):
    error = refused(openai(model_server, policy=NetworkPolicy()))
    assert error.code == "provider_url_refused"
    assert "loopback" in error.message
    assert model_server.requests == []  # refused before a byte was sent


def test_an_allowed_network_admits_the_endpoint(model_server):
    import ipaddress

    model_server.queue(Reply(body=openai_completion("ok")))
    policy = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    assert openai(model_server, policy=policy).complete(CONVERSATION, []).message.content == "ok"


def test_plain_http_to_a_public_address_is_refused_before_connecting():
    # A public address (documentation ranges count as private); refused before any packet leaves.
    credentials = {"api_key": KEY, "base_url": "http://8.8.8.8/v1", "timeout_seconds": 1, "max_retries": 0}
    settings = ProviderSettings(model="gpt", credentials=credentials)
    error = refused(provider_create("openai", settings))
    assert error.code == "provider_url_refused"
    assert "https" in error.message


def test_an_unreachable_endpoint_is_reported_without_the_key(model_server):
    port = model_server.port
    model_server.close()
    settings = ProviderSettings(
        model="gpt",
        credentials={"api_key": KEY, "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0},
        network=LOOPBACK,
    )
    assert refused(provider_create("openai", settings)).code == "provider_unreachable"


def test_the_key_is_in_no_repr(model_server):
    provider = openai(model_server)
    settings = ProviderSettings(model="gpt", credentials={"api_key": KEY})
    connection = Connection.of("openai", {"api_key": KEY}, default_base_url="https://api.openai.com/v1")
    for text in (repr(provider), str(provider), repr(settings), repr(connection)):
        assert KEY not in text


# --- in an agent graph ----------------------------------------------------------------------


def test_an_agent_graph_runs_a_tool_calling_loop_with_the_openai_provider(model_server, invoice_triage, finance):
    model_server.queue(
        Reply(body=openai_completion(tool_calls=[("call_q1", "find_invoices", {"question": "Rules?"})])),
        Reply(body=openai_completion("INV-1001 can be approved.", prompt_tokens=900, cached_tokens=512)),
    )
    provider = openai(model_server, parameters=invoice_triage["spec"]["model"]["parameters"])
    result = AgentGraph(invoice_triage, finance, provider=provider).start("thread-1", "Triage invoice INV-1001.")

    assert (result.status, result.output) == ("succeeded", "INV-1001 can be approved.")
    assert [(s["node"], s.get("tool")) for s in result.steps] == [
        ("model", None),
        ("tool", "find_invoices"),
        ("model", None),
    ]
    assert result.steps[0]["provider"] == "openai" and result.steps[0]["model"] == "gpt-test"
    assert (result.input_tokens, result.output_tokens) == (930, 14)
    assert result.steps[2]["cached_tokens"] == 512
    first, second = (r.json for r in model_server.requests)
    assert first["temperature"] == 0  # the manifest's parameters
    assert first["messages"][0]["role"] == "system" and "triage vendor invoices" in first["messages"][0]["content"]
    assert first["messages"][1] == {"role": "user", "content": "Triage invoice INV-1001."}
    assert {t["function"]["name"] for t in first["tools"]} == {"find_invoices", "find_vendors", "vendor_registry"}
    tool_result = second["messages"][-1]
    assert (tool_result["role"], tool_result["tool_call_id"]) == ("tool", "call_q1")
    assert tool_result["content"].startswith('{"domain": {"name": "finance", "version": 1}')


def test_a_failing_endpoint_fails_the_run_with_the_providers_code(model_server, invoice_triage, finance):
    model_server.queue(Reply(401, {"error": {"message": "bad key"}}))
    result = AgentGraph(invoice_triage, finance, provider=openai(model_server)).start("t", "x")
    assert (result.status, result.reason) == ("failed", "model_failed")
    assert result.steps[0]["error"] == "provider_auth_failed"
    assert KEY not in json.dumps(result.steps)
