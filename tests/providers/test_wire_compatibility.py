"""The `openai` and `anthropic` providers with answers as the real APIs and the servers speaking
their formats give them (tests/providers/fake_models.py), a run advanced as a worker would."""

from django_tenants.utils import schema_context

from apps.providers.services import credential_set
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply, anthropic_message, openai_completion, text, tool_use
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"


def _run(acme, server, provider="openai"):
    base = server.origin + "/v1" if provider == "openai" else server.origin
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        credential_set(actor=owner, provider=provider, api_key=KEY, base_url=base)
    agent = deploy(acme, FINANCE, agent_yaml(provider=provider))
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    return advance(run, "acme")


def _blank_text_blocks(request) -> list:
    return [
        (message["role"], block)
        for message in request.json["messages"]
        for block in message["content"]
        if block.get("type") == "text" and not block["text"].strip()
    ]


def test_anthropic_whitespace_text_before_a_tool_use_is_not_sent_back(acme, keys, server):
    """Claude may write a text block of only whitespace ("\n\n") beside its tool_use; the Messages
    API refuses a request carrying one (400), so it is not sent back."""
    server.queue(
        Reply(body=anthropic_message(text("\n\n"), tool_use("toolu_a", "find_invoices", {"question": "INV-7"}))),
        Reply(body=anthropic_message(text("INV-7 is fine."))),
    )
    run = _run(acme, server, provider="anthropic")
    assert len(server.requests) == 2, (run.status, run.reason, run.message)
    assert _blank_text_blocks(server.requests[1]) == []


def test_openai_finish_reason_tool_calls_without_a_tool_call_is_not_an_empty_success(acme, keys, server):
    """`finish_reason: "tool_calls"` without a tool call (a local server's tool parser failed on
    it): `provider_bad_response`, not an empty answer that ends the run succeeded."""
    server.queue(Reply(body=openai_completion("", finish_reason="tool_calls")))
    run = _run(acme, server)
    with schema_context("acme"):
        errors = list(run.steps.filter(node="model").values_list("error", flat=True))
    assert (run.status, run.reason) == ("failed", "model_failed"), (run.status, run.output)
    assert errors == ["provider_bad_response"]
