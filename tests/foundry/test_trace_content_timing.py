"""Prompts and completions go on the model-call spans of runs started after the workspace allows
it (docs/observability.md, "Traces"): a run keeps what the setting was when it was started."""

from tests.api.conftest import api, issue
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
from tests.runs.test_engine import start


def test_a_run_started_while_content_was_off_is_not_traced_with_content(acme, graph_spans):
    agent = deploy(acme, FINANCE, TRIAGE)
    run = start(acme, agent, "Triage invoice INV-1001 for Jane Q. Customer.")  # flag off: queued
    assert run.status == "queued"
    admin = api(acme, issue(acme))
    answer = admin.patch("/api/v1/workspace", {"trace_content": True}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["trace_content"] is True

    advance(run, "acme")  # the worker picks the run up after the flag changed
    chats = [s for s in graph_spans.get_finished_spans() if s.name.startswith("chat ")]
    assert chats
    carried = [s.attributes["gen_ai.input.messages"] for s in chats if "gen_ai.input.messages" in s.attributes]
    assert not carried, f"a run started with trace_content off exported its prompts: {carried[0][:200]}"
