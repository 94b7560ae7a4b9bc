"""What a run's pages draw of text they do not refuse (a run's input, a model's answer, a tool's
result, a tool name a model made up) is shown with its text-direction and control characters
escaped (`\\u202e`), as the model's arguments are (foundry/text.py): a U+202E drawn raw reverses
what follows it (`Pay \\u202e0001 EUR` is drawn `Pay RUE 1000`)."""

import json

from django_tenants.utils import schema_context

from apps.runs.models import Run, Step
from tests.conftest import client_for
from tests.runs.conftest import advance
from tests.runs.test_api import client, make_run, post

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


def _run_page(tenant, run_id) -> str:
    response = client_for(tenant, "operator@acme.test").get(f"/runs/{run_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_run_input_with_a_text_direction_override_is_refused_or_shown_escaped(acme, triage):
    """A run's input (a member's, shown to every other member: the run page, the run list) is
    taken as written, a right-to-left text's marks included, and shown with the override escaped."""
    text = f"Pay EUR {RLO}0001 to ACME"
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": text})
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "input_invalid"
        return
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    html = _run_page(acme, run_id)
    listing = client_for(acme, "operator@acme.test").get("/runs/").content.decode()
    assert RLO not in html, "the run page draws the input's U+202E raw"
    assert RLO not in listing, "the run list draws the input's U+202E raw"


def test_a_models_answer_with_a_text_direction_override_is_shown_escaped(acme, triage):
    """The model is untrusted (docs/runs.md): its answer (the run's output, its step's summary) is
    shown with the override escaped, so `IBAN \\u202e98 7654` does not read `IBAN 4567 89`."""
    answer = f"Pay to IBAN DE{RLO}98 7654 3210"
    response = post(
        client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": "Hi", "script": [{"respond": answer}]}
    )
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        run = Run.objects.get(pk=response.json()["id"])
    assert advance(run, "acme").output == answer
    html = _run_page(acme, run.pk)
    assert RLO not in html, "the model's answer (output and step summary) is drawn with its U+202E raw"


def test_a_tools_answer_with_a_text_direction_override_is_shown_escaped_in_the_timeline(acme, triage):
    """A tool's answer (an external service's text: untrusted) is the tool step's summary, which
    the timeline an approver reads before the next call shows escaped, as the step's arguments."""
    run = make_run(acme, triage, status=Run.Status.SUCCEEDED, step_count=1, output="done")
    with schema_context("acme"):
        Step.objects.create(
            run=run,
            index=1,
            node="tool",
            tool="find_invoices",
            arguments={"question": f"x{RLO}y"},
            status="ok",
            summary=json.dumps({"payee": f"ACME Ltd {RLO}0009 3214"}, ensure_ascii=False),
            record={"index": 1},
            replay={"content": "x"},
        )
    html = _run_page(acme, run.pk)
    timeline = html[html.index('data-testid="timeline"') :]
    assert "x\\u202ey" in timeline  # the arguments: escaped
    assert RLO not in timeline, "the tool's answer is drawn with its U+202E raw"


def test_a_tool_name_the_model_made_up_with_a_text_direction_override_is_shown_escaped(acme, triage):
    """A call to a tool the agent does not have is recorded with the name the model gave
    (`tool_unknown`); the timeline shows it escaped, so it cannot be made to read as another tool."""
    name = f"refund{RLO}seciovni_dnif"
    script = [{"tool_call": {"tool": name, "arguments": {}}}, {"respond": "done"}]
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": "Hi", "script": script})
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        run = Run.objects.get(pk=response.json()["id"])
    advance(run, "acme")
    with schema_context("acme"):
        assert Step.objects.filter(run=run, node="tool", tool=name).exists()
    html = _run_page(acme, run.pk)
    timeline = html[html.index('data-testid="timeline"') :]
    assert RLO not in timeline, "the made-up tool name is drawn with its U+202E raw"
