"""What a model endpoint (or a stored base URL) can make of a run.

Every case here should end the run with a coded reason (model_failed / provider_*), never with
`internal_error`, within the call's time limit, and a save-time check should refuse what the docs
say is refused."""

import hashlib
import json
import socket
import threading
import time

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context
from langchain_core.messages import HumanMessage

from apps.providers.services import credential_set
from apps.runs.services import run_start
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.provider_http import MAX_RESPONSE_BYTES
from foundry.runtime.providers import ProviderError, ProviderSettings, provider_create
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, anthropic_message, openai_completion, text, tool_use
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"


def _base_url(kind, server) -> str:
    return server.origin + "/v1" if kind == "openai" else server.origin


def _agent(acme, base_url, kind="openai"):
    with schema_context("acme"):
        credential_set(actor=tenant_user(acme, "owner@acme.test"), provider=kind, api_key=KEY, base_url=base_url)
    return deploy(acme, FINANCE, agent_yaml(provider=kind))


def _run(acme, agent):
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=agent, input="hi")
    return advance(run, "acme")


def _nest(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def _steps(run) -> list[dict]:
    with schema_context("acme"):
        return list(run.steps.order_by("index").values("index", "node", "tool", "status", "error", "summary"))


def _provider(kind, server=None, *, url=None, **credentials):
    """A provider straight from the runtime (no database), with the response bound runs use."""
    credentials = {"api_key": KEY, "base_url": url or _base_url(kind, server), "max_retries": 0, **credentials}
    network = NetworkPolicy(allow_private=True, max_response_bytes=MAX_RESPONSE_BYTES)
    return provider_create(kind, ProviderSettings(model="m", credentials=credentials, network=network))


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


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_tool_call_arguments_nested_as_deep_as_json_reads_are_kept(server, kind):
    """600 levels: json.loads reads them, and cleaning their text (lone surrogates) walks them
    without recursion (it ran out of Python's stack, a RecursionError no ProviderError names)."""
    arguments = {"question": _nest(600), "note": "\ud800"}
    if kind == "openai":
        server.queue(Reply(body=openai_completion(tool_calls=[("c1", "lookup", arguments)])))
    else:
        server.queue(Reply(body=anthropic_message(tool_use("t1", "lookup", arguments))))
    reply = _provider(kind, server).complete([HumanMessage(content="hi")], [])
    (call,) = reply.message.tool_calls
    assert call["args"] == {"question": _nest(600), "note": "\ufffd"}


@pytest.mark.parametrize("depth", [300, 600])
def test_deeply_nested_tool_call_arguments_do_not_end_the_run_on_an_internal_error(acme, keys, server, depth):
    body = openai_completion(tool_calls=[("c1", "find_invoices", {"question": _nest(depth)})])
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


# --- tool calls: text no request can carry, ids ---------------------------------------------------


# Raw bodies: json.dumps would escape the surrogate the same way, but spelled out for clarity.
OPENAI_ARGUMENTS = (
    b'{"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": '
    b'{"role": "assistant", "content": null, "tool_calls": [{"id": "call_a", "type": "function", '
    b'"function": {"name": "find_invoices", "arguments": "{\\"question\\": \\"INV-7 \\\\ud800\\"}"}}]}}], '
    b'"usage": {"prompt_tokens": 10, "completion_tokens": 5}}'
)
OPENAI_NAME = (
    b'{"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": '
    b'{"role": "assistant", "content": null, "tool_calls": [{"id": "call_a", "type": "function", '
    b'"function": {"name": "find\\ud800invoices", "arguments": "{}"}}]}}], '
    b'"usage": {"prompt_tokens": 10, "completion_tokens": 5}}'
)
OPENAI_ID = (
    b'{"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": '
    b'{"role": "assistant", "content": null, "tool_calls": [{"id": "call_\\ud800", "type": "function", '
    b'"function": {"name": "find_invoices", "arguments": "{}"}}]}}], '
    b'"usage": {"prompt_tokens": 10, "completion_tokens": 5}}'
)


@pytest.mark.parametrize("body", [OPENAI_ARGUMENTS, OPENAI_NAME, OPENAI_ID], ids=["arguments", "name", "id"])
def test_openai_a_lone_surrogate_in_a_tool_call_does_not_end_the_run_on_an_internal_error(acme, keys, server, body):
    server.queue(Reply(body=body), Reply(body=openai_completion("done")), Reply(body=openai_completion("done")))
    run = _run(acme, _agent(acme, _base_url("openai", server)))
    status, reason, message = run.status, run.reason, run.message
    assert reason != "internal_error", (status, reason, message)


def test_anthropic_a_lone_surrogate_in_tool_use_input_does_not_end_the_run_on_an_internal_error(acme, keys, server):
    server.queue(
        Reply(body=anthropic_message(tool_use("toolu_a", "find_invoices", {"question": "INV-7 \ud800"}))),
        Reply(body=anthropic_message(text("done"))),
        Reply(body=anthropic_message(text("done"))),
    )
    run = _run(acme, _agent(acme, _base_url("anthropic", server), "anthropic"))
    status, reason, message = run.status, run.reason, run.message
    assert reason != "internal_error", (status, reason, message)


def test_openai_never_gives_two_calls_of_one_answer_the_same_id(server):
    """An id made up for a call that came without one (`call_{position}_{number}`) never equals
    an id the endpoint gave another call of the same answer: no two calls share one."""
    server.queue(
        Reply(body=openai_completion(tool_calls=[("call_1_2", "find_invoices", {}), ("", "find_invoices", {"q": 1})]))
    )
    reply = _provider("openai", server).complete([HumanMessage("hi")], [])
    ids = [call["id"] for call in reply.message.tool_calls]
    assert len(set(ids)) == len(ids), ids


def test_anthropic_never_gives_two_calls_of_one_answer_the_same_id(server):
    """As for OpenAI, with `toolu_{position}_{number}`."""
    server.queue(
        Reply(body=anthropic_message(tool_use("toolu_1_2", "find_invoices", {}), tool_use("", "find_invoices", {})))
    )
    reply = _provider("anthropic", server).complete([HumanMessage("hi")], [])
    ids = [call["id"] for call in reply.message.tool_calls]
    assert len(set(ids)) == len(ids), ids


def test_a_run_executes_every_tool_call_the_model_asked_for(acme, keys, server):
    """End to end: two tool calls in one answer, the second without an id, both run, and the next
    request answers each call once."""
    server.queue(
        Reply(
            body=openai_completion(
                tool_calls=[("call_1_2", "find_invoices", {}), ("", "find_invoices", {"question": "INV-7"})]
            )
        ),
        Reply(body=openai_completion("done")),
        Reply(body=openai_completion("done")),
    )
    run = _run(acme, _agent(acme, _base_url("openai", server)))
    tool_steps = [s for s in _steps(run) if s["node"] == "tool"]
    assert len(tool_steps) == 2, (run.status, _steps(run))
    sent = server.requests[1].json["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    answered = [m["tool_call_id"] for m in sent if m["role"] == "tool"]
    assert sorted(c["id"] for c in assistant["tool_calls"]) == sorted(answered)
    assert len(set(answered)) == 2


# --- cut answers, time limits ----------------------------------------------------------------------


def test_anthropic_context_window_exceeded_is_not_a_silent_success(acme, keys, server):
    """`stop_reason: "model_context_window_exceeded"` is an answer cut off, like max_tokens: half an
    answer is not the agent's answer (graph._answered)."""
    server.queue(Reply(body=anthropic_message(text("INV-7 should be"), stop_reason="model_context_window_exceeded")))
    run = _run(acme, _agent(acme, _base_url("anthropic", server), "anthropic"))
    status, reason, steps = run.status, run.reason, _steps(run)
    assert (status, reason) == ("failed", "model_output_truncated"), (status, steps)


SLOW_HOST = "models.slow-dns.example.com"
DNS_SECONDS = 6.0


@pytest.fixture
def slow_dns(monkeypatch):
    """A DNS server that never answers for SLOW_HOST: the system resolver gives up after a while."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == SLOW_HOST:
            time.sleep(DNS_SECONDS)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_attempt_ends_at_its_deadline_even_when_dns_does_not_answer(slow_dns, kind):
    """Name resolution counts against the attempt's deadline (docs/providers.md)."""
    model = _provider(kind, url=f"https://{SLOW_HOST}/v1", timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        model.complete([HumanMessage("hi")], [], timeout=1)
    took = time.monotonic() - started
    assert took < 3, f"the 1 s attempt took {took:.1f} s ({info.value.code})"
    assert info.value.code == "provider_timeout"


# 164 characters, the length of an OpenAI project key (sk-proj-…).
LONG_KEY = "sk-proj-" + hashlib.sha512(b"review").hexdigest() + hashlib.sha256(b"review").hexdigest()[:28]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_large_error_message_does_not_stall_the_call_past_its_time_limit(server, kind):
    """Only the beginning of an error message is quoted, and only a bounded beginning is scanned
    for the key: megabytes of words do not hold the call past its time limit."""
    server.queue(Reply(400, {"error": {"type": "invalid_request_error", "message": "a " * 3_500_000}}))
    model = _provider(kind, server, api_key=LONG_KEY, timeout_seconds=2)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        model.complete([HumanMessage("hi")], [], timeout=2)
    took = time.monotonic() - started
    assert info.value.code == "provider_request_refused"
    assert len(info.value.message) < 500
    assert took < 4, f"a call with 2 s left took {took:.1f} s to report a 400"


class _StallingServer:
    """Answers every request with its head at once, one byte of the body `after` seconds later,
    then nothing, the connection held open."""

    def __init__(self, body: bytes, after: float):
        self.body, self.after = body, after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.origin = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            try:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                conn.sendall(head % len(self.body))
                time.sleep(self.after)
                conn.sendall(self.body[:1])
                self.stop.wait(10)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_attempt_ends_at_its_deadline_even_when_the_body_stalls(kind):
    """The whole response counts against the attempt's deadline (docs/providers.md): a body whose
    first byte comes just before it, then nothing, is cut there — each read of the body waited
    its own full timeout, holding the attempt for up to twice its time."""
    body = json.dumps(openai_completion("ok")).encode()
    stalling = _StallingServer(body, after=0.8)
    try:
        model = _provider(kind, url=stalling.origin + ("/v1" if kind == "openai" else ""), timeout_seconds=1)
        started = time.monotonic()
        with pytest.raises(ProviderError) as info:
            model.complete([HumanMessage("hi")], [], timeout=1)
        took = time.monotonic() - started
    finally:
        stalling.close()
    assert info.value.code == "provider_timeout"
    assert took < 1.5, f"the 1 s attempt took {took:.1f} s"


def _answered_once(acme, server, provider: str, body: dict):
    """A run of acme's agent on `provider`, whose endpoint answers `body` once: (run, its steps' errors)."""
    server.queue(Reply(body=body))
    owner = tenant_user(acme, "owner@acme.test")
    base_url = server.origin + ("/v1" if provider == "openai" else "")
    with schema_context("acme"):
        credential_set(actor=owner, provider=provider, api_key=KEY, base_url=base_url)
    agent = deploy(acme, FINANCE, agent_yaml(provider=provider))
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    run = advance(run, "acme")
    with schema_context("acme"):
        return run, list(run.steps.order_by("index").values_list("error", flat=True))


def test_a_choice_without_any_content_is_a_bad_response_not_a_silent_success(acme, keys, server):
    """docs/providers.md: `provider_bad_response` is "not the wire format: malformed JSON, no
    choices/content, …", and a model call refused as malformed fails the run `model_failed`
    (docs/runs.md). A choice with no `content`, no tool calls and no refusal — a buggy or hostile
    OpenAI-compatible server — used to become an empty answer, and the run `succeeded` with an
    empty output as if the agent had finished. (An explicit `""` stays an answer.)"""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 0},
    }
    run, errors = _answered_once(acme, server, "openai", body)
    assert (run.status, run.reason) == ("failed", "model_failed"), (run.status, run.reason, run.output)
    assert errors == ["provider_bad_response"]


@pytest.mark.parametrize(
    ("blocks", "stop", "answered"),
    [
        ([], "tool_use", False),
        ([{"type": "thinking", "thinking": "hmm", "signature": "sig"}], "tool_use", False),
        # The Messages API answers an empty content when the model has nothing to add (after a
        # tool's result, say): an empty answer, as an empty text is.
        ([], "end_turn", True),
        ([{"type": "text", "text": ""}], "end_turn", True),
    ],
    ids=["tool-use-no-blocks", "tool-use-thinking-only", "end-turn-no-blocks", "empty-text"],
)
def test_an_anthropic_message_stopped_for_a_tool_it_does_not_call_is_a_bad_response(
    acme, keys, server, blocks, stop, answered
):
    """Stopped for tool_use with no tool_use block: it became an empty final answer, and the run
    `succeeded` with output '' (the openai provider's rule: nothing said is no answer)."""
    body = {**anthropic_message(), "content": blocks, "stop_reason": stop}
    run, errors = _answered_once(acme, server, "anthropic", body)
    if answered:
        assert (run.status, run.output, errors) == ("succeeded", "", [""]), (run.reason, errors)
    else:
        assert (run.status, run.reason, errors) == ("failed", "model_failed", ["provider_bad_response"])
