"""A model's text holding a lone UTF-16 surrogate (valid JSON) is carried through a run, replaced
by U+FFFD as docs/runs.md says: kept as it came, it failed the encoding of the next request to the
model, and the run ended `failed / internal_error`. Each test runs a deployed agent whose
`openai`/`anthropic` model is the loopback server of tests/providers/fake_models.py."""

from django_tenants.utils import schema_context

from apps.providers.services import credential_set
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, anthropic_message, openai_completion, text
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"


def _run(acme, server, provider):
    base = server.origin + "/v1" if provider == "openai" else server.origin
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        credential_set(actor=owner, provider=provider, api_key=KEY, base_url=base)
    agent = deploy(acme, FINANCE, agent_yaml(provider=provider))
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    run = advance(run, "acme")
    return run.status, run.reason, run.message


# The model's text beside its tool call holds a lone UTF-16 surrogate (`\ud800`): valid JSON, which
# json.loads turns into a str no UTF-8 encoder takes. Spelled as raw bytes so the escape is sent as is.
OPENAI_TEXT_WITH_SURROGATE = (
    b'{"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": '
    b'{"role": "assistant", "content": "Looking up INV-7 \\ud800", "tool_calls": [{"id": "call_a", '
    b'"type": "function", "function": {"name": "find_invoices", "arguments": "{}"}}]}}], '
    b'"usage": {"prompt_tokens": 10, "completion_tokens": 5}}'
)
ANTHROPIC_TEXT_WITH_SURROGATE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "c", "stop_reason": "tool_use", '
    b'"content": [{"type": "text", "text": "Looking up INV-7 \\ud800"}, '
    b'{"type": "tool_use", "id": "toolu_a", "name": "find_invoices", "input": {}}], '
    b'"usage": {"input_tokens": 10, "output_tokens": 5}}'
)


def test_openai_a_lone_surrogate_in_the_answers_text_does_not_end_the_run_on_an_internal_error(acme, keys, server):
    """The OpenAI provider cleans lone surrogates out of a tool call's name, id and arguments
    (provider_http.text_clean), but not out of the message's `content`. The text is kept in the
    conversation, and the next request (after the tool ran) cannot be encoded: the SDK raises
    UnicodeEncodeError, which is no ProviderError, and the run ends `internal_error`.
    docs/runs.md: text no column can store (lone surrogates) "in a model's … answer is replaced by
    U+FFFD"; tests/providers/test_hostile_answers.py: a model endpoint's answer must end a run
    with a coded reason, never `internal_error`. Here the run should simply go on and succeed."""
    server.queue(Reply(body=OPENAI_TEXT_WITH_SURROGATE), Reply(body=openai_completion("done")))
    status, reason, message = _run(acme, server, "openai")
    assert reason != "internal_error", (status, reason, message)
    assert len(server.requests) == 2, "the second model call was never sent"


def test_anthropic_a_lone_surrogate_in_a_text_block_does_not_end_the_run_on_an_internal_error(acme, keys, server):
    """As for OpenAI: AnthropicProvider.reply cleans a tool_use block's name and input, not a text
    block's `text`; the next request cannot be encoded (UnicodeEncodeError) and the run ends
    `internal_error` instead of going on (docs/runs.md, as above)."""
    server.queue(Reply(body=ANTHROPIC_TEXT_WITH_SURROGATE), Reply(body=anthropic_message(text("done"))))
    status, reason, message = _run(acme, server, "anthropic")
    assert reason != "internal_error", (status, reason, message)
    assert len(server.requests) == 2, "the second model call was never sent"
