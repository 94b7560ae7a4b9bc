"""What a model endpoint (or a stored base URL) can make of a run.

Every case here should end the run with a coded reason (model_failed / provider_*), never with
`internal_error`, and a save-time check should refuse what the docs say is refused."""

import ipaddress

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage

from apps.providers.services import credential_set
from apps.runs.services import run_start
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderError, ProviderSettings, provider_create
from tests.conftest import tenant_user
from tests.providers.fake_models import FakeModelServer, Reply, openai_completion
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"


@pytest.fixture
def keys(settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.FOUNDRY_PROVIDER_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def server():
    server = FakeModelServer()
    yield server
    server.close()


def _agent(acme, base_url):
    with schema_context("acme"):
        credential_set(actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, base_url=base_url)
    return deploy(acme, FINANCE, agent_yaml(provider="openai"))


def _run(acme, agent):
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="hi")
    return advance(run, "acme")


def _nest(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def _provider(kind, server):
    base = server.origin + "/v1" if kind == "openai" else server.origin
    credentials = {"api_key": KEY, "base_url": base, "max_retries": 0}
    return provider_create(
        kind, ProviderSettings(model="m", credentials=credentials, network=NetworkPolicy(allow_private=True))
    )


# --- usage --------------------------------------------------------------------------------------


def test_a_huge_token_count_in_usage_does_not_end_the_run_on_an_internal_error(acme, keys, server):
    server.queue(Reply(body=openai_completion("ok", prompt_tokens=2**31)))
    run = _run(acme, _agent(acme, server.origin + "/v1"))
    assert run.reason != "internal_error", (run.status, run.reason, run.message)


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_deeply_nested_json_body_is_a_bad_response_not_a_recursion_error(server, kind):
    server.queue(Reply(body=b'{"choices": ' + b"[" * 100_000))
    with pytest.raises(ProviderError) as info:
        _provider(kind, server).complete([HumanMessage(content="hi")], [])
    assert info.value.code == "provider_bad_response"


def test_deeply_nested_tool_call_arguments_are_a_bad_response_not_a_recursion_error(server):
    arguments = '{"question": ' + "[" * 100_000 + "]" * 100_000 + "}"
    server.queue(Reply(body=openai_completion(tool_calls=[("c1", "lookup", arguments)])))
    with pytest.raises(ProviderError) as info:
        _provider("openai", server).complete([HumanMessage(content="hi")], [])
    assert info.value.code == "provider_bad_response"


@pytest.mark.parametrize("field", ["finish_reason", "id"])
def test_a_non_string_finish_reason_or_id_does_not_end_the_run_on_an_internal_error(acme, keys, server, field):
    body = openai_completion("ok")
    if field == "id":
        body["id"] = 10**40
    else:
        body["choices"][0]["finish_reason"] = 10**40
    server.queue(Reply(body=body))
    run = _run(acme, _agent(acme, server.origin + "/v1"))
    assert run.reason != "internal_error", (run.status, run.reason, run.message)


def test_deeply_nested_tool_call_arguments_do_not_end_the_run_on_an_internal_error(acme, keys, server):
    body = openai_completion(tool_calls=[("c1", "find_invoices", {"question": _nest(300)})])
    server.queue(Reply(body=body), Reply(body=openai_completion("done")))
    run = _run(acme, _agent(acme, server.origin + "/v1"))
    assert run.reason != "internal_error", (run.status, run.reason, run.message)


# --- base URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", "a\u200db.example"])
def test_a_base_url_whose_host_cannot_be_encoded_is_refused_when_saved(acme, keys, host):
    with schema_context("acme"), pytest.raises(ValidationError) as info:
        credential_set(
            actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, base_url=f"https://{host}/v1"
        )
    assert info.value.error_dict["base_url"][0].code == "base_url_invalid"


def test_a_stored_base_url_the_client_cannot_use_fails_the_run_with_a_reason(acme, keys):
    from apps.providers.models import ProviderCredential

    agent = _agent(acme, "https://api.example.com/v1")
    with schema_context("acme"):  # stored before the check existed
        ProviderCredential.objects.filter(provider="openai").update(
            base_url="https://\uff4c\uff4f\uff43\uff41\uff4c/v1"
        )
    run = _run(acme, agent)
    assert (run.status, run.reason) == ("failed", "provider_settings_invalid"), run.message


def test_a_literal_loopback_address_with_a_trailing_dot_is_refused_when_saved(acme, settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with schema_context("acme"), pytest.raises(ValidationError) as info:
        credential_set(
            actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, base_url="http://127.0.0.1./v1"
        )
    assert info.value.error_dict["base_url"][0].code == "base_url_refused"
