"""An endpoint's error answer in a charset Python knows but cannot read text with (rot13, base64,
idna, undefined) is read as UTF-8: the call fails with the documented `provider_*` code (HTTP 5xx
`provider_server_error`, another 4xx `provider_request_refused`) and the run `model_failed`, not
`internal_error` (the SDKs read an error answer's text in the charset it names)."""

import pytest
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage

from apps.providers.services import credential_set
from apps.runs.services import run_start
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.provider_http import MAX_RESPONSE_BYTES
from foundry.runtime.providers import ProviderError, ProviderSettings, provider_create
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"
# Codecs Python knows (so httpx would take them from the Content-Type) that cannot decode a body
# with errors="replace": UnicodeError (undefined, idna), TypeError (rot13), AssertionError (base64).
HOSTILE_CHARSETS = ["undefined", "idna", "rot13", "base64"]


@pytest.fixture
def keys(settings, loopback_allowed):
    """The encryption key is conftest's (autouse); the fake server is on loopback; no retries."""
    settings.FOUNDRY_PROVIDER_MAX_RETRIES = 0


@pytest.fixture
def server(model_server):
    return model_server


def _base_url(kind, server):
    return server.origin + "/v1" if kind == "openai" else server.origin


def _provider(kind, server):
    credentials = {"api_key": KEY, "base_url": _base_url(kind, server), "max_retries": 0}
    network = NetworkPolicy(allow_private=True, max_response_bytes=MAX_RESPONSE_BYTES)
    return provider_create(kind, ProviderSettings(model="m", credentials=credentials, network=network))


def _error_reply(status, charset):
    return Reply(
        status=status,
        body={"error": {"message": "model not found"}},
        content_type=f"application/json; charset={charset}",
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("charset", HOSTILE_CHARSETS)
@pytest.mark.parametrize(("status", "code"), [(400, "provider_request_refused"), (500, "provider_server_error")])
def test_an_error_answer_in_an_odd_charset_is_a_provider_error(server, kind, charset, status, code):
    server.queue(_error_reply(status, charset))
    with pytest.raises(ProviderError) as info:
        _provider(kind, server).complete([HumanMessage(content="hi")], [])
    assert info.value.code == code


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_error_answer_in_an_odd_charset_fails_the_run_as_model_failed_not_internal_error(acme, keys, server, kind):
    with schema_context("acme"):
        credential_set(
            actor=tenant_user(acme, "owner@acme.test"), provider=kind, api_key=KEY, base_url=_base_url(kind, server)
        )
    agent = deploy(acme, FINANCE, agent_yaml(provider=kind))
    server.queue(_error_reply(400, "undefined"))
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="hi")
    run = advance(run, "acme")
    assert (run.status, run.reason) == ("failed", "model_failed"), (run.status, run.reason, run.message)
    with schema_context("acme"):
        errors = list(run.steps.exclude(error="").values_list("error", flat=True))
    assert errors == ["provider_request_refused"], errors
