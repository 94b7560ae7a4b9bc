"""Model providers: one small interface, and the registry that turns a provider name into one.

A provider is given the conversation (LangChain messages, system message first) and the specs
of the tools the model may call, and answers with one assistant message — text and/or tool
calls — plus its token usage.

`scripted` is the offline, deterministic provider (no keys, no network):

* It follows its script, one step per model call: `{tool_call: {tool, arguments}}` emits that
  tool call, `{respond: text}` answers with that text (a final answer). Which step comes next
  is read from the conversation itself — a call whose conversation already holds *n* assistant
  messages gets step *n + 1* — so a run resumed from a checkpoint, by a new process, continues
  exactly where it stopped.
* When the script is exhausted (or there is none) it answers by one rule: if the last message
  is a tool result, the final answer is `"<tool> returned: <result>"` (the result cut to
  its first 1,000 characters and "…"); otherwise it is `"No scripted answer for: <the last user message>"`.
* Tool-call ids are `call_<n>`, n being the step's 1-based position in the script.

Token usage (every provider reports it; `scripted` computes it with this tokenizer, so usage
and cost work offline): a text counts `ceil(UTF-8 bytes / 4)` tokens (`count_tokens`). A
message counts its text plus, for tool calls, the compact JSON of `[{"name", "arguments"}]`
(`message_tokens`). Input tokens of a call are the sum over every message sent (system message
included) plus the compact JSON of every tool spec; output tokens are those of the reply.

`openai` (any OpenAI-compatible chat-completions endpoint: OpenAI, Azure OpenAI, vLLM, Ollama)
and `anthropic` (the Messages API) live in `provider_openai.py` / `provider_anthropic.py`; they
need `credentials` (a tenant's, decrypted by apps.providers) and reach only the addresses their
`network` policy admits. Every provider reports `Usage` the same way: `input_tokens` counts every
prompt token, cached ones included; `cached_tokens` is the part of them read from a cache and
`cache_write_tokens` the part written to it (billed apart by Anthropic: its price list's
cache-write price, apps/billing). The two parts never overlap; `scripted` reports neither.

Errors are `ProviderError` with a stable code (docs/providers.md lists them); messages never
carry a credential.
"""

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from foundry.manifests import PROVIDERS
from foundry.runtime.network import NetworkPolicy

FALLBACK_RESULT_CHARS = 1_000


# The longest tool-call id kept as the endpoint sent it (approvals store up to 200 characters): a
# longer one, a gateway's, is replaced by one of ours, as a missing one is.
MAX_TOOL_CALL_ID = 128


# Why a model stopped (OpenAI's finish_reason, Anthropic's stop_reason) when its answer is not
# whole: cut short (and at what), or withheld by the endpoint. The graph ends the run on them.
CUT_REASONS = {
    "length": "the output limit",
    "max_tokens": "the output limit",
    "model_context_window_exceeded": "the model's context window",
}
WITHHELD_REASONS = frozenset({"content_filter", "refusal"})


class ProviderError(Exception):
    """A provider that cannot be used or a model call that failed. `code` is stable."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
        # The tokens the endpoint said it used, when it answered something refused: billed anyway.
        self.usage: Usage | None = None


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about one tool: its name, description and JSON Schema of arguments."""

    name: str
    description: str
    parameters: dict

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of input_tokens: read from the provider's prompt cache
    cache_write_tokens: int = 0  # of input_tokens: written to it

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ModelReply:
    """One model call's answer: an assistant message (text and/or tool calls) and its usage."""

    message: AIMessage
    usage: Usage


class Provider(Protocol):
    name: str
    model: str

    def complete(
        self, messages: Sequence[BaseMessage], tools: Sequence[ToolSpec], *, timeout: float | None = None
    ) -> ModelReply:
        """Answer the conversation. Raise ProviderError (e.g. `provider_timeout`) when the call fails."""
        ...


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider is created from: the manifest's model, and per-run extras."""

    model: str
    parameters: Mapping = field(default_factory=dict)
    script: Sequence[Mapping] = ()  # the scripted provider's steps
    # A tenant's connection to a real provider: api_key, base_url and, where they apply,
    # organization, api_version, deployment, timeout_seconds, max_retries (docs/providers.md).
    # Left out of repr: it holds the API key.
    credentials: Mapping | None = field(default=None, repr=False)
    # Which addresses a real provider may reach; the default admits public addresses only.
    network: NetworkPolicy = field(default_factory=NetworkPolicy)


# --- tokens ---------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """The documented offline tokenizer: ceil(UTF-8 bytes / 4)."""
    return math.ceil(len(text.encode("utf-8")) / 4)


def _compact(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [part if isinstance(part, str) else part.get("text", "") for part in content]
    return "".join(p for p in parts if isinstance(p, str))


def message_tokens(message: BaseMessage) -> int:
    tokens = count_tokens(message_text(message))
    calls = getattr(message, "tool_calls", None)
    if calls:
        tokens += count_tokens(_compact([{"name": c["name"], "arguments": c["args"]} for c in calls]))
    return tokens


def request_tokens(messages: Sequence[BaseMessage], tools: Sequence[ToolSpec]) -> int:
    return sum(message_tokens(m) for m in messages) + sum(count_tokens(_compact(t.as_dict())) for t in tools)


# --- scripted -------------------------------------------------------------------------------


class ScriptedProvider:
    """Offline and deterministic: follows `script`, then answers by the rule in the module docstring."""

    name = "scripted"

    def __init__(self, script: Sequence[Mapping] = (), *, model: str = "scripted"):
        self.script = list(script)
        self.model = model

    def complete(
        self, messages: Sequence[BaseMessage], tools: Sequence[ToolSpec], *, timeout: float | None = None
    ) -> ModelReply:
        position = sum(isinstance(m, AIMessage) for m in messages)
        if position < len(self.script):
            reply = self._step(self.script[position], position + 1)
        else:
            reply = AIMessage(content=self._fallback(messages))
        usage = Usage(input_tokens=request_tokens(messages, tools), output_tokens=message_tokens(reply))
        reply.usage_metadata = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        }
        reply.response_metadata = {"model_name": self.model, "provider": self.name}
        return ModelReply(message=reply, usage=usage)

    @staticmethod
    def _step(step: Mapping, number: int) -> AIMessage:
        if "tool_call" in step:
            call = step["tool_call"]
            arguments = dict(call.get("arguments") or {})
            return AIMessage(content="", tool_calls=[{"name": call["tool"], "args": arguments, "id": f"call_{number}"}])
        if "respond" in step:
            return AIMessage(content=str(step["respond"]))
        raise ProviderError("script_invalid", f"Script step {number} is neither tool_call nor respond.")

    @staticmethod
    def _fallback(messages: Sequence[BaseMessage]) -> str:
        last = messages[-1] if messages else None
        if isinstance(last, ToolMessage):
            result = message_text(last)
            if len(result) > FALLBACK_RESULT_CHARS:
                result = result[:FALLBACK_RESULT_CHARS] + "…"
            return f"{last.name or 'The tool'} returned: {result}"
        question = next((message_text(m) for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        return f"No scripted answer for: {question}"


# --- registry -------------------------------------------------------------------------------

ProviderFactory = Callable[[ProviderSettings], Provider]


def _openai(settings: ProviderSettings) -> Provider:
    from foundry.runtime.provider_openai import OpenAIProvider  # the SDK is loaded only when used

    return OpenAIProvider.from_settings(settings)


def _anthropic(settings: ProviderSettings) -> Provider:
    from foundry.runtime.provider_anthropic import AnthropicProvider

    return AnthropicProvider.from_settings(settings)


_FACTORIES: dict[str, ProviderFactory] = {
    "scripted": lambda settings: ScriptedProvider(settings.script, model=settings.model),
    "openai": _openai,
    "anthropic": _anthropic,
}


def provider_register(name: str, factory: ProviderFactory) -> None:
    """Make provider `name` available (real providers register here)."""
    _FACTORIES[name] = factory


def provider_create(name: str, settings: ProviderSettings) -> Provider:
    """The provider called `name`, or ProviderError `provider_unavailable` / `provider_unknown`."""
    factory = _FACTORIES.get(name)
    if factory is not None:
        return factory(settings)
    if name in PROVIDERS:
        available = ", ".join(sorted(_FACTORIES))
        raise ProviderError(
            "provider_unavailable",
            f"The {name!r} provider is not available in this version of the runtime; available: {available}.",
        )
    raise ProviderError("provider_unknown", f"Unknown provider {name!r}; one of {', '.join(PROVIDERS)}.")
