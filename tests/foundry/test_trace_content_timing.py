"""Prompts and completions go on the model-call spans of runs started after the workspace allows
it (docs/observability.md, "Traces"): a run keeps what the setting was when it was started."""

from django_tenants.utils import schema_context

from apps.runs.engine import Attempt
from apps.runs.usage import usage_recorded
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_trace_content_set
from tests.api.conftest import api, issue
from tests.conftest import tenant_user
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


PRIVATE = "Triage invoice INV-1001 for Jane Q. Customer."


def test_turning_trace_content_off_stops_recording_at_the_next_model_call(acme, graph_spans):
    """Turned off while a run is under way, the run's next model call goes without its prompts
    and completions (the per-step read of the run also reads the setting)."""
    agent = deploy(acme, FINANCE, TRIAGE)  # model -> tool -> model: two model calls in one attempt
    admin = api(acme, issue(acme))
    answer = admin.patch("/api/v1/workspace", {"trace_content": True}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["trace_content"] is True
    script = [
        {"tool_call": {"tool": "find_invoices", "arguments": {"question": "Which rules apply to invoices?"}}},
        {"respond": "INV-1001 for Jane Q. Customer can be approved."},
    ]
    run = start(acme, agent, PRIVATE, script=script)
    assert run.trace_content is True

    turned_off = []

    def off_after_first_call(record, schema, **kwargs):
        # The admin turns content off right after the run's first model call.
        if not turned_off:
            owner = tenant_user(acme, "owner@acme.test")
            tenant_trace_content_set(tenant=Tenant.objects.get(pk=acme.pk), allowed=False, actor=owner)
            turned_off.append(record.step)

    usage_recorded.connect(off_after_first_call)
    try:
        run = advance(run, "acme")
    finally:
        usage_recorded.disconnect(off_after_first_call)
    assert run.status == "succeeded", run.message
    assert turned_off
    with schema_context("public"):
        assert Tenant.objects.get(pk=acme.pk).trace_content is False

    chats = sorted(
        (s for s in graph_spans.get_finished_spans() if s.name.startswith("chat ")), key=lambda s: s.start_time
    )
    assert len(chats) >= 2
    assert "gen_ai.input.messages" in chats[0].attributes  # recorded while allowed
    later = [s.attributes["gen_ai.input.messages"] for s in chats[1:] if "gen_ai.input.messages" in s.attributes]
    assert not later, later[0][:200]


def test_trace_content_turned_off_after_a_step_is_recorded_is_off_for_the_next_model_call(
    acme, graph_spans, monkeypatch
):
    """Turning trace content off "stops the recording of every run at its next model call"
    (docs/observability.md): turned off after step 2 (a tool call) was recorded, before model
    call 3 began, model call 3's span goes without prompts and completions. The setting is read
    as a model call's answer is about to go on its span."""
    agent = deploy(acme, FINANCE, TRIAGE)
    admin = api(acme, issue(acme))
    answer = admin.patch("/api/v1/workspace", {"trace_content": True}, content_type="application/json")
    assert answer.status_code == 200
    script = [
        {"tool_call": {"tool": "find_invoices", "arguments": {"question": "Which rules apply to invoices?"}}},
        {"respond": "INV-1001 for Jane Q. Customer can be approved."},
    ]
    run = start(acme, agent, PRIVATE, script=script)
    assert run.trace_content is True
    owner = tenant_user(acme, "owner@acme.test")
    original = Attempt._record

    def record_then_admin_turns_content_off(self, step, payload):
        original(self, step, payload)
        if step["index"] == 2:  # the tool step is committed; model call 3 has not begun
            tenant_trace_content_set(tenant=Tenant.objects.get(pk=acme.pk), allowed=False, actor=owner)

    monkeypatch.setattr(Attempt, "_record", record_then_admin_turns_content_off)
    run = advance(run, "acme")
    assert run.status == "succeeded", run.message
    chats = sorted(
        (s for s in graph_spans.get_finished_spans() if s.name.startswith("chat ")), key=lambda s: s.start_time
    )
    assert len(chats) == 2
    assert "gen_ai.input.messages" in chats[0].attributes
    assert "gen_ai.input.messages" not in chats[1].attributes, "content recorded after it was turned off"
