"""With trace_content off (the default), a run's prompts do not reach the logs either
(docs/observability.md "Traces": prompts and completions are recorded only when the workspace
allows it; "Logs": `FOUNDRY_LOG_LEVEL` sets the root level). The libraries that print what they
send at DEBUG are kept quiet whatever the root level (settings.LOGGING): the anthropic SDK's
`anthropic._base_client` logged every request's whole JSON body ("Request options: ...": system
prompt, user input, tool results) at DEBUG."""

import json
import logging

import pytest

from tests.foundry.test_logs import json_log_lines
from tests.providers.fake_models import Reply, anthropic_message, text
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy, model_server_for
from tests.runs.test_engine import start

PRIVATE = "Jane Q. Customer, IBAN DE89370400440532013000"


@pytest.fixture
def anthropic_agent(acme, settings):
    server = model_server_for(acme, settings, "anthropic")
    try:
        yield server, deploy(acme, FINANCE, agent_yaml(provider="anthropic"))
    finally:
        server.close()


def test_anthropic_prompts_are_not_logged_at_debug_level_without_trace_content(acme, anthropic_agent):
    """FOUNDRY_LOG_LEVEL=DEBUG (a documented setting, e.g. to chase a worker problem) writes no
    workspace's prompts into the worker's log when trace_content is off."""
    server, agent = anthropic_agent
    server.replies.append(Reply(200, anthropic_message(text("Noted."))))
    assert acme.trace_content is False
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)  # what LOGGING["root"]["level"] is with FOUNDRY_LOG_LEVEL=DEBUG
    try:
        with json_log_lines() as lines:
            run = advance(start(acme, agent, f"Triage the invoice of {PRIVATE}."), "acme")
    finally:
        root.setLevel(level)
    assert run.status == "succeeded", run.message
    assert server.requests, "the provider was called"
    leaked = [
        f"{line['logger']}: {line['message'][:160]}" for line in lines if "DE89370400440532013000" in json.dumps(line)
    ]
    assert not leaked, f"the run's prompt reached the logs: {leaked}"
