"""credential_set / credential_delete / provider_settings_for."""

from dataclasses import replace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage

from apps.providers.services import credential_delete, credential_set, provider_settings_for
from foundry.errors import ServiceError
from foundry.runtime.providers import ProviderError, provider_create
from tests.conftest import audit_events, tenant_user
from tests.providers.conftest import KEY, manifest, set_credential, stored
from tests.providers.fake_models import Reply, anthropic_message, openai_completion, text


def refusal(call, **kwargs) -> dict:
    with pytest.raises(ValidationError) as info:
        call(**kwargs)
    return {field: [e.code for e in errors] for field, errors in info.value.error_dict.items()}


def events(tenant, action: str) -> list:
    return audit_events(tenant.schema_name, action=action)


# --- credential_set ---------------------------------------------------------------------------


def test_it_creates_a_credential_with_the_key_encrypted_and_only_its_last_four_shown(acme):
    credential = set_credential(acme, base_url="https://gateway.example.com/v1", organization="org-acme")
    assert (credential.provider, credential.base_url, credential.organization) == (
        "openai",
        "https://gateway.example.com/v1",
        "org-acme",
    )
    assert credential.api_key_encrypted != KEY and KEY not in credential.api_key_encrypted
    assert (credential.api_key_last4, credential.api_key_masked) == (KEY[-4:], f"…{KEY[-4:]}")
    assert credential.created_by == credential.updated_by == "owner@acme.test"
    assert KEY not in str(credential) and KEY not in repr(credential)


def test_a_short_key_shows_no_characters(acme):
    credential = set_credential(acme, api_key="ollama", base_url="https://ollama.example.com/v1")
    assert (credential.api_key_last4, credential.api_key_masked) == ("", "…")


def test_setting_again_replaces_the_fields_and_keeps_the_key_when_none_is_given(acme):
    first = set_credential(acme, base_url="https://one.example.com/v1", organization="org-1")
    again = set_credential(acme, api_key=None, base_url="https://one.example.com/v1")
    assert again.pk == first.pk
    assert (again.base_url, again.organization) == ("https://one.example.com/v1", "")
    assert again.api_key_encrypted == first.api_key_encrypted
    replaced = set_credential(acme, api_key="sk-proj-replacement-000000001111")
    assert replaced.api_key_last4 == "1111" and replaced.api_key_encrypted != first.api_key_encrypted


def test_it_records_an_audit_event_without_the_key(acme):
    set_credential(acme, base_url="https://gateway.example.com/v1")
    set_credential(acme, api_key=None, base_url="https://gateway.example.com/v1", organization="acme-research")
    first, second = events(acme, "provider.credential.set")
    assert first.actor_id == f"user:{tenant_user(acme, 'owner@acme.test').pk}"
    assert first.data == {
        "provider": "openai",
        "created": True,
        "key_replaced": True,
        "base_url": "https://gateway.example.com/v1",
        "organization": "",
        "api_version": "",
        "deployment": "",
    }
    assert (second.data["created"], second.data["key_replaced"]) == (False, False)
    for event in (first, second):
        assert KEY not in str(event.data) and KEY not in event.target and KEY[-4:] not in str(event.data)


def test_the_azure_fields_are_kept(acme):
    credential = set_credential(
        acme, base_url="https://acme.openai.azure.com", api_version="2024-10-21", deployment="gpt4o-prod"
    )
    assert credential.is_azure and credential.deployment == "gpt4o-prod"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"api_key": None}, {"api_key": ["api_key_required"]}),
        ({"api_key": ""}, {"api_key": ["api_key_invalid"]}),
        ({"api_key": "sk has spaces"}, {"api_key": ["api_key_invalid"]}),
        ({"api_key": "k" * 1001}, {"api_key": ["api_key_invalid"]}),
        ({"base_url": "ftp://models.example.com"}, {"base_url": ["base_url_invalid"]}),
        ({"base_url": "https://"}, {"base_url": ["base_url_invalid"]}),
        ({"base_url": "https://user:pw@models.example.com/v1"}, {"base_url": ["base_url_invalid"]}),
        ({"base_url": "https://models.example.com/v1?x=1"}, {"base_url": ["base_url_invalid"]}),
        ({"base_url": "https://models.example.com:99999/v1"}, {"base_url": ["base_url_invalid"]}),
        ({"base_url": "https://exa mple.com"}, {"base_url": ["base_url_invalid"]}),
        ({"base_url": "http://127.0.0.1:11434/v1"}, {"base_url": ["base_url_refused"]}),
        ({"base_url": "http://10.1.2.3:8000/v1"}, {"base_url": ["base_url_refused"]}),
        ({"base_url": "http://[::1]:8000/v1"}, {"base_url": ["base_url_refused"]}),
        ({"base_url": "http://169.254.169.254/latest"}, {"base_url": ["base_url_refused"]}),
        ({"base_url": "http://[::ffff:127.0.0.1]/v1"}, {"base_url": ["base_url_refused"]}),
        ({"base_url": "http://8.8.8.8/v1"}, {"base_url": ["base_url_insecure"]}),
        ({"api_version": "2024-10-21"}, {"base_url": ["base_url_required"]}),
        ({"deployment": "prod"}, {"deployment": ["deployment_requires_api_version"]}),
        (
            {"base_url": "https://a.openai.azure.com", "api_version": "2024/10", "deployment": "../x"},
            {"api_version": ["api_version_invalid"], "deployment": ["deployment_invalid"]},
        ),
        (
            {"base_url": "https://a.openai.azure.com", "api_version": "..", "deployment": "."},
            {"api_version": ["api_version_invalid"], "deployment": ["deployment_invalid"]},
        ),
        ({"organization": "o" * 201}, {"organization": ["organization_invalid"]}),
    ],
)
def test_bad_input_is_refused_field_by_field_and_stores_nothing(acme, fields, expected):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        assert refusal(credential_set, actor=owner, provider="openai", **{"api_key": KEY, **fields}) == expected
    assert stored(acme) is None
    assert events(acme, "provider.credential.set") == []


def test_anthropic_takes_no_openai_fields(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        errors = refusal(credential_set, actor=owner, provider="anthropic", api_key=KEY, organization="org")
    assert errors == {"organization": ["field_not_supported"]}


def test_an_allowed_network_admits_a_private_base_url(acme, loopback_allowed):
    assert set_credential(acme, base_url="http://127.0.0.1:8000/v1").base_url == "http://127.0.0.1:8000/v1"


def test_a_failed_update_changes_nothing(acme):
    before = set_credential(acme, base_url="https://one.example.com/v1")
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name), pytest.raises(ValidationError):
        credential_set(actor=owner, provider="openai", api_key="bad key", base_url="https://two.example.com/v1")
    after = stored(acme)
    assert (after.base_url, after.api_key_encrypted, after.updated_at) == (
        before.base_url,
        before.api_key_encrypted,
        before.updated_at,
    )


@pytest.mark.parametrize("provider", ["scripted", "mystery", ""])
def test_only_real_providers_take_credentials(acme, provider):
    with pytest.raises(ServiceError) as info:
        set_credential(acme, provider)
    assert (info.value.code, info.value.status) == ("provider_unknown", 404)


@pytest.mark.parametrize("email", ["developer@acme.test", "operator@acme.test", "viewer@acme.test"])
def test_members_without_settings_permission_are_refused(acme, email):
    with pytest.raises(PermissionDenied):
        set_credential(acme, email=email)
    set_credential(acme, email="admin@acme.test")
    with pytest.raises(PermissionDenied), schema_context(acme.schema_name):
        credential_delete(actor=tenant_user(acme, email), provider="openai")
    assert stored(acme) is not None


# --- credential_delete ------------------------------------------------------------------------


def test_delete_forgets_the_credential_and_is_audited(acme):
    set_credential(acme)
    with schema_context(acme.schema_name):
        credential_delete(actor=tenant_user(acme, "admin@acme.test"), provider="openai")
    assert stored(acme) is None
    (event,) = events(acme, "provider.credential.delete")
    assert event.actor_id == f"user:{tenant_user(acme, 'admin@acme.test').pk}" and event.data == {"provider": "openai"}
    assert event.target_type == "providers.providercredential"


def test_deleting_what_is_not_there_is_a_404(acme):
    with schema_context(acme.schema_name), pytest.raises(ServiceError) as info:
        credential_delete(actor=tenant_user(acme, "owner@acme.test"), provider="anthropic")
    assert (info.value.code, info.value.status) == ("provider_not_configured", 404)


# --- provider_settings_for --------------------------------------------------------------------


def test_scripted_needs_no_credentials(acme):
    with schema_context(acme.schema_name):
        settings = provider_settings_for(manifest("scripted", "scripted-1"), script=[{"respond": "hi"}])
    assert (settings.model, settings.credentials, list(settings.script)) == ("scripted-1", None, [{"respond": "hi"}])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_real_provider_without_credentials_is_not_configured(acme, provider):
    with schema_context(acme.schema_name), pytest.raises(ServiceError) as info:
        provider_settings_for(manifest(provider))
    assert (info.value.code, info.value.status) == ("provider_not_configured", 409)


def test_it_must_run_inside_a_tenant_schema(db):
    with pytest.raises(RuntimeError):
        provider_settings_for(manifest())


def test_the_settings_carry_the_decrypted_key_and_the_platform_limits(acme, settings):
    settings.FOUNDRY_PROVIDER_TIMEOUT_SECONDS = 42.0
    settings.FOUNDRY_PROVIDER_MAX_RETRIES = 1
    set_credential(acme, base_url="https://gateway.example.com/v1", organization="org-acme")
    with schema_context(acme.schema_name):
        result = provider_settings_for(manifest(temperature=0.5))
    assert (result.model, dict(result.parameters)) == ("gpt-4o-mini", {"temperature": 0.5})
    assert result.credentials == {
        "api_key": KEY,
        "base_url": "https://gateway.example.com/v1",
        "organization": "org-acme",
        "api_version": "",
        "deployment": "",
        "timeout_seconds": 42.0,
        "max_retries": 1,
    }
    assert result.network.allowed_networks == () and result.network.allow_private is False
    assert KEY not in repr(result)


def test_a_run_calls_the_model_with_the_tenants_key(acme, model_server, loopback_allowed):
    set_credential(acme, base_url=model_server.origin + "/v1")
    set_credential(acme, "anthropic", api_key="sk-ant-acme-1234567890abcd", base_url=model_server.origin)
    model_server.queue(Reply(body=openai_completion("from openai")), Reply(body=anthropic_message(text("from claude"))))
    with schema_context(acme.schema_name):
        gpt = provider_create("openai", provider_settings_for(manifest(temperature=0)))
        claude = provider_create("anthropic", provider_settings_for(manifest("anthropic", "claude-x")))
    assert gpt.complete([HumanMessage(content="hi")], []).message.content == "from openai"
    assert claude.complete([HumanMessage(content="hi")], []).message.content == "from claude"
    to_gpt, to_claude = model_server.requests
    assert (to_gpt.path, to_gpt.headers["authorization"]) == ("/v1/chat/completions", f"Bearer {KEY}")
    assert (to_claude.path, to_claude.headers["authorization"]) == ("/v1/messages", "Bearer sk-ant-acme-1234567890abcd")
    assert to_gpt.json["temperature"] == 0


def test_without_an_allowed_network_a_run_cannot_reach_a_private_model_server(acme, model_server):
    # Names are stored as given; their addresses are checked when a run calls them.
    set_credential(acme, base_url="https://models.internal.example/v1")
    with schema_context(acme.schema_name):
        result = provider_settings_for(manifest())
    at_loopback = replace(result, credentials={**result.credentials, "base_url": model_server.origin + "/v1"})
    with pytest.raises(ProviderError) as info:
        provider_create("openai", at_loopback).complete([HumanMessage(content="hi")], [])
    assert info.value.code == "provider_url_refused"
    assert model_server.requests == []


@pytest.mark.parametrize("url", ["http://127.1:11434/v1", "http://2130706433/v1", "http://0x7f000001/v1"])
def test_a_loopback_address_in_a_legacy_spelling_is_refused_when_saved(acme, url):
    with schema_context(acme.schema_name), pytest.raises(ValidationError) as info:
        credential_set(actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, base_url=url)
    assert info.value.error_dict["base_url"][0].code == "base_url_refused"


def test_an_organization_that_cannot_travel_in_a_header_is_refused(acme):
    """It is sent as the OpenAI-Organization header (ASCII): every call would fail on it."""
    with schema_context(acme.schema_name), pytest.raises(ValidationError) as info:
        credential_set(
            actor=tenant_user(acme, "owner@acme.test"), provider="openai", api_key=KEY, organization="org-für"
        )
    assert info.value.error_dict["organization"][0].code == "organization_invalid"


def test_saving_what_is_stored_changes_and_records_nothing(acme):
    """A PUT retried (its answer lost) or a form saved unchanged, with the key or without it:
    nothing is saved, recorded or signalled (found by a review: each recorded another
    `provider.credential.set`, the key "replaced", and told the workspace's runs to read it anew)."""
    first = set_credential(acme, base_url="https://gateway.example.com/v1")
    again = set_credential(acme, base_url="https://gateway.example.com/v1")
    kept = set_credential(acme, api_key=None, base_url="https://gateway.example.com/v1")
    assert again.updated_at == kept.updated_at == first.updated_at
    assert len(events(acme, "provider.credential.set")) == 1
    set_credential(acme, api_key=KEY + "-new", base_url="https://gateway.example.com/v1")  # a change is one
    assert len(events(acme, "provider.credential.set")) == 2
