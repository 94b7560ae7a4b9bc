"""The `anthropic` provider: Anthropic's Messages API, with tool use.

Requests go through the official `anthropic` SDK over the guarded HTTP client and the bounded
retries of provider_http.py; the response body is read as the wire format itself, so a
drifting endpoint fails with `provider_bad_response`. The base URL is the API's root, without
`/v1` (the SDK adds `/v1/messages`).

The conversation is sent as the API wants it: system messages joined into `system`; tool
calls as `tool_use` blocks of the assistant; tool results as `tool_result` blocks (a failed
tool's with `is_error`) of the next user turn; consecutive turns of one role merged.

Manifest parameters → request fields: `max_output_tokens` → `max_tokens` (required by the
API; default 4096), `stop` → `stop_sequences`, and temperature, top_p, top_k as themselves.
Any other parameter is refused (`provider_parameter_unsupported`).

Usage: the API's `input_tokens` excludes cached prompt tokens, so input is
`input_tokens + cache_read_input_tokens + cache_creation_input_tokens` (every prompt token,
as for openai), cached is `cache_read_input_tokens` and cache writes are
`cache_creation_input_tokens` (priced apart: Anthropic bills them above the input price); output
is `output_tokens`.
"""

from collections.abc import Mapping, Sequence

import anthropic
import httpx2
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.provider_http import (
    Connection,
    bad_response,
    call_with_retries,
    http_client,
    integer,
    json_body,
    request_parameters,
    text_clean,
    text_or_none,
    tool_call_id,
)
from foundry.runtime.providers import (
    ModelReply,
    ProviderError,
    ProviderSettings,
    ToolSpec,
    Usage,
    message_text,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096
PARAMETERS = {
    "max_output_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop_sequences",
}
# Fields the SDK version in use takes as arguments; the rest travel in `extra_body`.
_SDK_FIELDS = {"max_tokens", "stop_sequences"}


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        model: str,
        connection: Connection,
        *,
        parameters: Mapping | None = None,
        network: NetworkPolicy | None = None,
    ):
        self.model = model
        self.connection = connection
        self.label = f"The anthropic endpoint {connection.label}"
        fields = request_parameters(self.label, parameters or {}, PARAMETERS)
        fields.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        if "stop_sequences" in fields:
            fields["stop_sequences"] = [str(fields["stop_sequences"])]
        self.arguments = {k: v for k, v in fields.items() if k in _SDK_FIELDS}
        self.extra_body = {k: v for k, v in fields.items() if k not in _SDK_FIELDS}
        try:
            self.client = anthropic.Anthropic(
                api_key=connection.api_key,
                base_url=connection.base_url,
                max_retries=0,  # call_with_retries retries, within the run's time budget
                timeout=connection.timeout_seconds,
                http_client=http_client(network or NetworkPolicy()),
                # No spans of the SDK's own: the graph's `chat <model>` span is the call's, and
                # ANTHROPIC_OPEN_TELEMETRY_* in the platform's environment would otherwise put every
                # workspace's prompts and the endpoint's path on them, whatever trace_content says.
                open_telemetry=False,
            )
        except (anthropic.AnthropicError, httpx2.InvalidURL, ValueError, TypeError):
            raise ProviderError("provider_settings_invalid", f"{self.label} is not a usable endpoint.") from None
        self.client.webhook_key = None  # read from the platform's environment otherwise; never used here

    def __repr__(self) -> str:
        return f"<AnthropicProvider {self.model!r} at {self.connection.label}>"

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> "AnthropicProvider":
        connection = Connection.of("anthropic", settings.credentials, default_base_url=DEFAULT_BASE_URL)
        return cls(settings.model, connection, parameters=settings.parameters, network=settings.network)

    def close(self) -> None:
        self.client.close()

    def complete(
        self, messages: Sequence[BaseMessage], tools: Sequence[ToolSpec], *, timeout: float | None = None
    ) -> ModelReply:
        system, turns = anthropic_messages(messages)
        request: dict = {"model": self.model, "messages": turns, **self.arguments}
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
        if self.extra_body:
            request["extra_body"] = self.extra_body

        def attempt(seconds: float) -> Mapping:
            raw = self.client.messages.with_raw_response.create(**request, timeout=seconds)
            return json_body(raw, self.label)

        try:
            body = call_with_retries(
                attempt, connection=self.connection, sdk=anthropic, label=self.label, timeout=timeout
            )
        except anthropic.AnthropicError:
            raise ProviderError("provider_call_failed", f"The call to {self.label} failed.") from None
        try:
            return self.reply(body, messages)
        except ProviderError as exc:  # answered, and billed: the tokens it says it used still count
            try:
                exc.usage = self._usage(body.get("usage")) if isinstance(body, Mapping) else None
            except ProviderError:
                exc.usage = None
            raise

    def reply(self, body: Mapping, messages: Sequence[BaseMessage]) -> ModelReply:
        """A Messages API response body → ModelReply (ProviderError if it is not one)."""
        blocks = body.get("content")
        if not isinstance(blocks, list):
            raise bad_response(self.label, "a message without content blocks")
        texts, calls, seen = [], [], set()
        position = sum(isinstance(m, AIMessage) for m in messages) + 1
        for number, block in enumerate(blocks, start=1):
            kind = block.get("type") if isinstance(block, Mapping) else None
            if kind == "text":
                if not isinstance(block.get("text"), str):
                    raise bad_response(self.label, "a text block without text")
                texts.append(text_clean(block["text"]))  # a lone surrogate would fail the next request
            elif kind == "tool_use":
                name, arguments, call_id = block.get("name"), block.get("input"), block.get("id")
                if not isinstance(name, str) or not name or not isinstance(arguments, Mapping):
                    raise bad_response(self.label, "a tool_use block without a name or an input object")
                call_id = tool_call_id(call_id, seen, f"toolu_{position}_{number}")
                calls.append({"name": text_clean(name), "args": text_clean(dict(arguments)), "id": call_id})
            elif kind is None:
                raise bad_response(self.label, "a content block without a type")
            # Other blocks (thinking, …) are the model's own business: not part of the answer.
        if text_or_none(body.get("stop_reason")) == "tool_use" and not calls:
            # Stopped to call a tool, and called none: not taken for a run's (empty) final answer.
            # An empty `content` with end_turn is one: the Messages API answers so when the model
            # has nothing to add after a tool's result.
            raise bad_response(self.label, "a message stopped for tool_use without a tool_use block")
        usage = self._usage(body.get("usage"))
        reply = AIMessage(content="".join(texts), tool_calls=calls)
        reply.usage_metadata = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "input_token_details": {"cache_read": usage.cached_tokens},
        }
        reply.response_metadata = {
            "provider": self.name,
            "model_name": body.get("model") if isinstance(body.get("model"), str) else self.model,
            "stop_reason": text_or_none(body.get("stop_reason")),
            "response_id": text_or_none(body.get("id")),
        }
        return ModelReply(message=reply, usage=usage)

    def _usage(self, raw: object) -> Usage:
        fresh = integer(raw.get("input_tokens")) if isinstance(raw, Mapping) else None
        output = integer(raw.get("output_tokens")) if isinstance(raw, Mapping) else None
        if fresh is None or output is None:
            raise bad_response(self.label, "a message without token usage")
        read = integer(raw.get("cache_read_input_tokens")) or 0
        written = integer(raw.get("cache_creation_input_tokens")) or 0
        return Usage(
            input_tokens=fresh + read + written, output_tokens=output, cached_tokens=read, cache_write_tokens=written
        )


def anthropic_messages(messages: Sequence[BaseMessage]) -> tuple[str, list[dict]]:
    """LangChain messages → (system text, Messages API turns)."""
    system: list[str] = []
    turns: list[dict] = []

    def add(role: str, blocks: list[dict]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in messages:
        text = message_text(message)
        if isinstance(message, SystemMessage):
            system.append(text)
        elif isinstance(message, HumanMessage):
            # The API refuses a text block that is empty or only whitespace (400).
            add("user", [{"type": "text", "text": text if text.strip() else "(empty message)"}])
        elif isinstance(message, AIMessage):
            # A model's own whitespace beside its tool_use (Claude writes "\n\n" there) is no text to send back.
            blocks = [{"type": "text", "text": text}] if text.strip() else []
            if not blocks and not message.tool_calls:
                blocks = [{"type": "text", "text": "(empty message)"}]
            blocks += [
                {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["args"]}
                for call in message.tool_calls
            ]
            add("assistant", blocks or [{"type": "text", "text": "(no answer)"}])
        elif isinstance(message, ToolMessage):
            result = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": text}
            if message.status == "error":
                result["is_error"] = True
            add("user", [result])
        else:
            raise ProviderError("provider_message_unsupported", f"Cannot send a {message.type} message to anthropic.")
    return "\n\n".join(system), turns
