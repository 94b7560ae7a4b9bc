"""The API key never reaches users through a provider's quoted error message (docs/providers.md,
"Error codes"), whatever its length or characters: the run's message and its step records are
shown to anyone who may view runs, far more people than the admins who set the key. A key of 1-3
characters, and a key with a quote or backslash in a body quoted as JSON, were quoted back.
Found by a review."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.providers.services import credential_set
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy


def _shown(acme, server, key: str, body: dict) -> str:
    """What a run whose endpoint answers HTTP 400 with `body` shows (its message and steps)."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        credential_set(actor=owner, provider="openai", api_key=key, base_url=server.origin + "/v1")
    agent = deploy(acme, FINANCE, agent_yaml(provider="openai"))
    server.queue(Reply(status=400, body=body))
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
    run = advance(run, "acme")
    assert run.status == "failed", (run.status, run.reason)
    with schema_context("acme"):
        steps = list(run.steps.values("summary", "error", "record"))
    return f"{run.message} {steps!r}"


def test_a_key_of_three_characters_is_not_quoted_back(acme, keys, server):
    """A key that short (a local server takes any) is saved; nothing the endpoint said is quoted."""
    key = "Zq9"
    shown = _shown(acme, server, key, {"error": {"message": f"Invalid model for API key {key}."}})
    assert key not in shown and "refused the request (HTTP 400)." in shown, shown


@pytest.mark.parametrize("key", ['pa5s"w0rd', "pa5s\\w0rd"])
def test_a_key_with_a_quote_or_backslash_is_not_quoted_back_json_escaped(acme, keys, server, key):
    """A body without `error.message` (FastAPI's `{"detail": …}`) is quoted as JSON, which escapes
    the key's `"` or `\\`: the key is looked for in that form too."""
    shown = _shown(acme, server, key, {"detail": f"API key {key} has no access to this model"})
    assert json.dumps(key)[1:-1] not in shown and "API key [redacted] has no access" in shown, shown
