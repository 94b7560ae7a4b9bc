"""Which answers the real providers retry, and how long they wait.

Pure runtime (no database): a provider against a loopback server speaking the wire format."""

import email.utils
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderError, ProviderSettings, provider_create
from tests.providers.fake_models import FakeModelServer, Reply, anthropic_message, openai_completion, text

KEY = "sk-test-Zq8LmN3pR7tV1wX5yB9c"
CONVERSATION = [SystemMessage(content="You triage invoices."), HumanMessage(content="Triage INV-7.")]


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """Overrides the project-wide fixture: nothing here touches the database or the cache."""
    yield


@pytest.fixture
def model_server():
    server = FakeModelServer()
    yield server
    server.close()


def _provider(kind, server, **credentials):
    base = server.origin + "/v1" if kind == "openai" else server.origin
    credentials = {"api_key": KEY, "base_url": base, "max_retries": 2, **credentials}
    settings = ProviderSettings(model="m", credentials=credentials, network=NetworkPolicy(allow_private=True))
    return provider_create(kind, settings)


def _ok(kind):
    return Reply(body=openai_completion("ok") if kind == "openai" else anthropic_message(text("ok")))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_retry_after_date_beyond_60_seconds_ends_the_call_at_once(model_server, kind):
    """`Retry-After` may be an HTTP-date (RFC 9110 §10.2.3; gateways and proxies in
    front of vLLM/Ollama/Azure send it so). provider_http._retry_after reads only a number of
    seconds, so a date two minutes ahead is ignored and the call is retried after 0.5 s of
    backoff — hammering an endpoint that asked for 120 s. docs/providers.md: retried "waiting as
    the endpoint's Retry-After says … a Retry-After above 60 s, ends the call at once"."""
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    model_server.queue(Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": later}), _ok(kind))
    with pytest.raises(ProviderError) as info:
        _provider(kind, model_server).complete(CONVERSATION, [], timeout=300)
    assert info.value.code == "provider_rate_limited"
    assert len(model_server.requests) == 1


@pytest.mark.parametrize("status", [400, 401])
def test_a_4xx_is_not_retried_even_when_the_endpoint_says_it_should_be(model_server, status):
    """provider_http.retry_wait retries ANY status when the response carries
    `x-should-retry: true` (an SDK-internal hint), so a 401 (the key refused) or a 400 (bad
    request) is sent again — with the tenant's key — up to FOUNDRY_PROVIDER_MAX_RETRIES times.
    docs/providers.md: only "Timeouts, failed connections and HTTP 408, 409, 429 and 5xx are
    retried"; 401/403 is `provider_auth_failed`, another 4xx `provider_request_refused`, both at
    once."""
    model_server.queue(Reply(status, {"error": {"message": "no"}}, headers={"x-should-retry": "true"}), _ok("openai"))
    with pytest.raises(ProviderError) as info:
        _provider("openai", model_server).complete(CONVERSATION, [])
    assert info.value.code == ("provider_auth_failed" if status == 401 else "provider_request_refused")
    assert len(model_server.requests) == 1
