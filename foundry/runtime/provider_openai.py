"""The `openai` provider: any endpoint speaking OpenAI's chat-completions wire format.

OpenAI itself (the default base URL), vLLM and Ollama (their `/v1` base URL), or Azure OpenAI:
a connection with an `api_version` is Azure's — the base URL is the resource endpoint, the
`api-key` header carries the key, and requests go to the `deployment` (default: the model name).

Requests go through the official `openai` SDK over the guarded HTTP client and the bounded
retries of provider_http.py; the response body is read as the wire format itself, so an
endpoint that drifts from it fails with `provider_bad_response` rather than with half a
message. A reply's content may also be a list of text parts (some compatible servers), and a
refusal with no content is the answer's text.

Manifest parameters → request fields: temperature, top_p, seed, frequency_penalty,
presence_penalty, stop, reasoning_effort, parallel_tool_calls as themselves;
`max_output_tokens` → `max_completion_tokens` (servers that only know the older field take
`max_tokens`, passed as is). Any other parameter is refused (`provider_parameter_unsupported`).

Usage: `prompt_tokens` → input, `completion_tokens` → output,
`prompt_tokens_details.cached_tokens` → cached, `prompt_tokens_details.cache_write_tokens` → cache
writes (an optional field of the chat-completions usage, "prompt tokens written to cache"; an
endpoint that leaves it out counts 0). Both are parts of the prompt tokens, so they are cut to what
the prompt holds. An endpoint that reports no usage (some local
servers) is counted with the offline tokenizer of providers.py, and the reply says so
(`response_metadata["usage_estimated"]`).
"""

import json
from collections.abc import Mapping, Sequence

import httpx2
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.provider_http import (
    URL_NAME,
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
    CUT_REASONS,
    WITHHELD_REASONS,
    ModelReply,
    ProviderError,
    ProviderSettings,
    ToolSpec,
    Usage,
    message_text,
    message_tokens,
    request_tokens,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PARAMETERS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_output_tokens": "max_completion_tokens",
    "max_tokens": "max_tokens",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "stop": "stop",
    "reasoning_effort": "reasoning_effort",
    "parallel_tool_calls": "parallel_tool_calls",
}


class OpenAIProvider:
    name = "openai"

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
        self.label = f"The openai endpoint {connection.label}"
        self.parameters = request_parameters(self.label, parameters or {}, PARAMETERS)
        deployment = connection.deployment
        if connection.api_version and not deployment:
            deployment = model  # Azure's default: the deployment named as the model
            if not URL_NAME.match(model):
                raise ProviderError(
                    "provider_settings_invalid",
                    f"{self.label} is Azure OpenAI's, where the model names the deployment in the URL: "
                    "letters, digits, '.', '_' or '-' only (or set the deployment in the workspace's settings).",
                )
        try:
            self.client = self._client(connection, network or NetworkPolicy(), deployment)
        except (openai.OpenAIError, httpx2.InvalidURL, ValueError, TypeError):
            # The SDK refuses the connection (say, a base URL it cannot parse); its words may quote it.
            raise ProviderError("provider_settings_invalid", f"{self.label} is not a usable endpoint.") from None

    def __repr__(self) -> str:
        return f"<OpenAIProvider {self.model!r} at {self.connection.label}>"

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> "OpenAIProvider":
        connection = Connection.of("openai", settings.credentials, default_base_url=DEFAULT_BASE_URL)
        return cls(settings.model, connection, parameters=settings.parameters, network=settings.network)

    @staticmethod
    def _client(connection: Connection, network: NetworkPolicy, deployment: str | None) -> openai.OpenAI:
        common = {
            "api_key": connection.api_key,
            "organization": connection.organization,
            "max_retries": 0,  # call_with_retries retries, within the run's time budget
            "timeout": connection.timeout_seconds,
            "http_client": http_client(network),
        }
        if connection.api_version:
            client = openai.AzureOpenAI(
                azure_endpoint=connection.base_url,
                azure_deployment=deployment,
                api_version=connection.api_version,
                **common,
            )
        else:
            client = openai.OpenAI(base_url=connection.base_url, **common)
        # The SDK fills these from the platform's environment when they are not given: a
        # workspace's requests carry only what the workspace configured.
        client.organization = connection.organization
        client.project = None
        client.admin_api_key = None
        client.webhook_secret = None
        return client

    def close(self) -> None:
        self.client.close()

    def complete(
        self, messages: Sequence[BaseMessage], tools: Sequence[ToolSpec], *, timeout: float | None = None
    ) -> ModelReply:
        request: dict = {"model": self.model, "messages": openai_messages(messages), **self.parameters}
        if tools:
            request["tools"] = [{"type": "function", "function": tool.as_dict()} for tool in tools]
        else:
            request.pop("parallel_tool_calls", None)  # refused by the API without tools

        def attempt(seconds: float) -> Mapping:
            raw = self.client.chat.completions.with_raw_response.create(**request, timeout=seconds)
            return json_body(raw, self.label)

        try:
            body = call_with_retries(attempt, connection=self.connection, sdk=openai, label=self.label, timeout=timeout)
        except openai.OpenAIError:
            raise ProviderError("provider_call_failed", f"The call to {self.label} failed.") from None
        try:
            return self.reply(body, messages, tools)
        except ProviderError as exc:  # answered, and billed: the tokens it says it used still count
            exc.usage = self._usage(body.get("usage")) if isinstance(body, Mapping) else None
            raise

    def reply(self, body: Mapping, messages: Sequence[BaseMessage], tools: Sequence[ToolSpec]) -> ModelReply:
        """A chat-completion response body → ModelReply (ProviderError if it is not one)."""
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise bad_response(self.label, "a response without choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, Mapping):
            raise bad_response(self.label, "a choice without a message")
        content = self._content(message)
        position = sum(isinstance(m, AIMessage) for m in messages) + 1
        calls = self._tool_calls(message.get("tool_calls"), position)
        # Stopped short or withheld (content null), the run ends on that reason instead (graph.py).
        unfinished = text_or_none(choice.get("finish_reason")) in {*CUT_REASONS, *WITHHELD_REASONS}
        if (
            message.get("content") is None
            and not isinstance(message.get("refusal"), str)
            and not calls
            and not unfinished
        ):
            # Nothing said at all (no content, refusal or tool call; an empty text is an answer):
            # not taken for a run's empty final answer.
            raise bad_response(self.label, "a message without content or tool calls")
        if text_or_none(choice.get("finish_reason")) == "tool_calls" and not calls:
            # Stopped for a call that is not there (a local server's tool parser failed on it): the
            # call is lost, not taken for a run's (empty) final answer.
            raise bad_response(self.label, "a message stopped for tool_calls without a tool call")
        reply = AIMessage(content=content, tool_calls=calls)
        usage, estimated = self._usage(body.get("usage")), False
        if usage is None:
            usage, estimated = Usage(request_tokens(messages, tools), message_tokens(reply)), True
        reply.usage_metadata = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "input_token_details": {"cache_read": usage.cached_tokens},
        }
        reply.response_metadata = {
            "provider": self.name,
            "model_name": body.get("model") if isinstance(body.get("model"), str) else self.model,
            "finish_reason": text_or_none(choice.get("finish_reason")),
            "response_id": text_or_none(body.get("id")),
            "usage_estimated": estimated,
        }
        return ModelReply(message=reply, usage=usage)

    def _content(self, message: Mapping) -> str:
        content = message.get("content")
        if isinstance(content, list):
            parts = [p.get("text") if isinstance(p, Mapping) else None for p in content]
            if not all(isinstance(p, str) for p in parts):
                raise bad_response(self.label, "message content parts that are not text")
            content = "".join(parts)
        if content is None and isinstance(message.get("refusal"), str):
            content = message["refusal"]
        if content is not None and not isinstance(content, str):
            raise bad_response(self.label, "a message whose content is not text")
        return text_clean(content or "")  # a lone surrogate would fail the next request's encoding

    def _tool_calls(self, raw: object, position: int) -> list[dict]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad_response(self.label, "tool calls that are not a list")
        calls, seen = [], set()
        for number, call in enumerate(raw, start=1):
            function = call.get("function") if isinstance(call, Mapping) else None
            name = function.get("name") if isinstance(function, Mapping) else None
            if not isinstance(name, str) or not name:
                raise bad_response(self.label, "a tool call without a function name")
            # Some local servers send no id, or the same one twice.
            call_id = tool_call_id(call.get("id"), seen, f"call_{position}_{number}")
            arguments = text_clean(self._arguments(function.get("arguments")))
            calls.append({"name": text_clean(name), "args": arguments, "id": call_id})
        return calls

    def _arguments(self, raw: object) -> dict:
        if isinstance(raw, Mapping):
            return dict(raw)  # a few compatible servers send an object instead of its JSON text
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return {}
        try:
            value = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise bad_response(self.label, "tool-call arguments that are not a JSON object")
        return value

    @staticmethod
    def _usage(raw: object) -> Usage | None:
        if not isinstance(raw, Mapping):
            return None
        prompt, completion = integer(raw.get("prompt_tokens")), integer(raw.get("completion_tokens"))
        if prompt is None or completion is None:
            return None
        details = raw.get("prompt_tokens_details")
        if not isinstance(details, Mapping):
            details = {}
        cached = min(integer(details.get("cached_tokens")) or 0, prompt)
        written = min(integer(details.get("cache_write_tokens")) or 0, prompt - cached)
        return Usage(input_tokens=prompt, output_tokens=completion, cached_tokens=cached, cache_write_tokens=written)


def openai_messages(messages: Sequence[BaseMessage]) -> list[dict]:
    """LangChain messages → chat-completions messages."""
    out = []
    for message in messages:
        text = message_text(message)
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": text})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": text})
        elif isinstance(message, AIMessage):
            entry: dict = {"role": "assistant", "content": text or (None if message.tool_calls else "")}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": json.dumps(call["args"], ensure_ascii=False)},
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": text})
        else:
            raise ProviderError("provider_message_unsupported", f"Cannot send a {message.type} message to openai.")
    return out
