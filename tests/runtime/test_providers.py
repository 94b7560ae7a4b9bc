"""The provider interface, the scripted provider's documented rules, and the registry."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from foundry.runtime.providers import (
    ProviderError,
    ProviderSettings,
    ScriptedProvider,
    ToolSpec,
    count_tokens,
    provider_create,
)

SPEC = ToolSpec("lookup", "Look things up.", {"type": "object", "properties": {}})


def test_count_tokens_is_ceil_of_utf8_bytes_over_four():
    assert [count_tokens(t) for t in ("", "a", "abcd", "abcde", "é" * 2, "€")] == [0, 1, 1, 2, 1, 1]


def test_it_follows_the_script_step_by_step_from_the_conversation():
    provider = ScriptedProvider([{"tool_call": {"tool": "lookup", "arguments": {"q": 1}}}, {"respond": "Done."}])
    conversation = [SystemMessage(content="sys"), HumanMessage(content="Go")]
    first = provider.complete(conversation, [SPEC])
    assert first.message.tool_calls == [{"name": "lookup", "args": {"q": 1}, "id": "call_1", "type": "tool_call"}]
    assert first.message.content == ""
    conversation += [first.message, ToolMessage(content="42", tool_call_id="call_1", name="lookup")]
    # A fresh instance (a resumed run in another process) continues from the conversation alone.
    second = ScriptedProvider(provider.script).complete(conversation, [SPEC])
    assert (second.message.content, second.message.tool_calls) == ("Done.", [])


def test_its_usage_follows_the_documented_tokenizer():
    provider = ScriptedProvider([{"respond": "abcdefgh"}])
    conversation = [SystemMessage(content="a" * 8), HumanMessage(content="b" * 5)]
    reply = provider.complete(conversation, [SPEC])
    spec_json = '{"description":"Look things up.","name":"lookup","parameters":{"properties":{},"type":"object"}}'
    assert reply.usage.input_tokens == 2 + 2 + count_tokens(spec_json)
    assert reply.usage.output_tokens == 2
    assert reply.message.usage_metadata["total_tokens"] == reply.usage.total_tokens


def test_tool_call_output_tokens_count_the_call_json():
    reply = ScriptedProvider([{"tool_call": {"tool": "lookup", "arguments": {"id": "x"}}}]).complete([], [])
    assert reply.usage.output_tokens == count_tokens('[{"arguments":{"id":"x"},"name":"lookup"}]')


def test_when_the_script_is_exhausted_it_summarises_the_last_tool_result():
    provider = ScriptedProvider([{"tool_call": {"tool": "lookup", "arguments": {}}}])
    conversation = [
        HumanMessage(content="Go"),
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {}, "id": "call_1"}]),
        ToolMessage(content="x" * 1500, tool_call_id="call_1", name="lookup"),
    ]
    reply = provider.complete(conversation, [])
    assert reply.message.content == "lookup returned: " + "x" * 1000 + "…"


def test_without_a_script_it_says_it_has_no_answer():
    reply = ScriptedProvider().complete([SystemMessage(content="s"), HumanMessage(content="Where is SH-1?")], [])
    assert reply.message.content == "No scripted answer for: Where is SH-1?"
    assert reply.message.tool_calls == []


def test_the_registry_creates_the_scripted_provider():
    provider = provider_create("scripted", ProviderSettings(model="scripted-1", script=[{"respond": "hi"}]))
    assert (provider.name, provider.model) == ("scripted", "scripted-1")
    assert provider.complete([HumanMessage(content="x")], []).message.content == "hi"


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_real_providers_are_registered_and_refuse_to_run_without_credentials(name):
    with pytest.raises(ProviderError) as info:
        provider_create(name, ProviderSettings(model="m"))
    assert info.value.code == "provider_credentials_missing"
    assert f"No {name} credentials are configured" in info.value.message


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_real_providers_are_created_from_credentials_without_calling_anyone(name):
    key = "sk-never-shown-0123456789"
    settings = ProviderSettings(model="m", credentials={"api_key": key, "base_url": "https://models.example.com/v1"})
    provider = provider_create(name, settings)
    assert (provider.name, provider.model) == (name, "m")
    assert key not in repr(provider) and key not in repr(settings)


def test_an_unknown_provider_is_refused():
    with pytest.raises(ProviderError) as info:
        provider_create("mystery", ProviderSettings(model="m"))
    assert info.value.code == "provider_unknown"
