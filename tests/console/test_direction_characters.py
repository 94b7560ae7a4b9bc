"""Text the console shows but the platform does not refuse is drawn with its text-direction
characters escaped (`\\u202e`), as foundry/text.py states and the run pages already do with the
`shown` filter (apps/runs/templatetags/runs.py; tests/runs/test_run_text_direction.py). A raw
U+202E RIGHT-TO-LEFT OVERRIDE reverses everything after it in its block: other people's text
and the console's own labels and figures (`above \\u202e000,01` reads `above 10,000`).

Pages covered here: a model name, a DIS rule's message on the approval card, the usage charts,
and the agent's YAML source and diff. (Manifests now refuse direction characters in a model's
name; runs and ledger rows written before still hold them, so a run's and the ledger's model
names are written so here.)
"""

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.catalog.services import version_publish
from apps.lifecycle.erasing import pseudonymising
from apps.runs.models import Run, Step
from tests.billing.test_rollups import ledger_add
from tests.conftest import client_for, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, agent_yaml, deploy
from tests.runs.test_api import client, post

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
MODEL = f"gpt{RLO}4-turbo"  # a model name written before manifests refused direction characters in it


def _agent_with_text() -> str:
    """An agent whose instructions (free text) hold a U+202E."""
    return agent_yaml("clerk").replace("instructions: Help with invoices.", f'instructions: "Help with {RLO}invoices."')


def _finished_run(acme) -> Run:
    """A run of an agent whose model's name held a U+202E, run once to its end (its rows written
    as the run of such a manifest, published before the rule, left them)."""
    deploy(acme, FINANCE, agent_yaml("clerk"))
    response = post(client(acme), "/api/v1/runs", {"agent": "clerk", "input": "Hi", "script": [{"respond": "ok"}]})
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        run = Run.objects.get(pk=response.json()["id"])
    run = advance(run, "acme")
    assert run.status == "succeeded"
    with schema_context("acme"), pseudonymising():  # steps are append-only: the erasure's mode rewrites them
        Run.objects.filter(pk=run.pk).update(model=MODEL)
        Step.objects.filter(run=run, node="model").update(model=MODEL)
    ledger_add(acme, model=MODEL, when=timezone.now())
    return run


def test_run_page_shows_the_model_name_with_direction_characters_escaped(acme):
    """The run page's *Model* fact (`run.model`) and each model step's `provider / model` in the
    timeline are escaped like the page's other texts from a manifest or a model: raw, the
    manifest's U+202E reversed the console's own text after it on the line (the `scripted,
    offline` badge; the step's status and `tokens · ms`)."""
    run = _finished_run(acme)
    html = client_for(acme, "operator@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert RLO not in html, "the run page draws the manifest's model name with its U+202E raw"


def test_approval_card_shows_a_rule_message_with_direction_characters_escaped(acme):
    """The approval card lists why the call waits (`pending.reasons`, runs/_run_live.html): a DIS
    rule's `message`, free text of the DIS author's. docs/runs.md: the approver is shown the call
    with text-direction characters escaped "so they read as the call that will be made", and the
    reason beside it too: raw, `Invoices above \\u202e000,01 need approval.` read to the operator as
    `Invoices above .lavorppa deen 10,000`, another threshold than the rule's."""
    domain = FINANCE.replace(
        "message: Invoices above 10,000 need a human approver.",
        f'message: "Invoices above {RLO}000,01 need approval."',
    )
    assert RLO in domain
    deploy(acme, domain, TRIAGE)
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {"amount": 25000}}}, {"respond": "ok"}]
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": "Hi", "script": script})
    assert response.status_code == 201, response.content
    with schema_context("acme"):
        run = Run.objects.get(pk=response.json()["id"])
    assert advance(run, "acme").status == "waiting_approval"
    html = client_for(acme, "operator@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="pending-approval"' in html
    assert RLO not in html, "the approval card draws the DIS rule's message with its U+202E raw"


def test_usage_charts_show_a_model_name_with_direction_characters_escaped(acme):
    """The usage page's charts by model (apps/billing/charts.py) escape the model name's U+202E in
    each bar's <title> (`day · model: figure`), the legend and the <desc> summary: raw, the figure
    after the name read reversed (`12` as `21`)."""
    _finished_run(acme)
    html = client_for(acme, "viewer@acme.test").get("/usage/?by=model").content.decode()
    assert "Tokens per day" in html
    assert RLO not in html, "the usage charts draw the model name with its U+202E raw"


def test_agent_page_source_listing_shows_direction_characters_escaped(acme):
    """An agent's page lists its YAML source (catalog/_source.html) to every member, a viewer
    included, who reviews what a developer published before it is deployed. Each line is drawn
    with its U+202E escaped, so no line reads other than it is written (the "Trojan Source" trick:
    the approver of a deploy would read another model, limit or tool list)."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        version_publish(actor=owner, source=FINANCE, message="domain")
        version_publish(actor=owner, source=_agent_with_text(), message="agent")
    html = client_for(acme, "viewer@acme.test").get("/agents/clerk/").content.decode()
    assert 'data-testid="source"' in html
    assert RLO not in html, "the agent page's source listing draws the U+202E raw"


def test_version_diff_shows_direction_characters_escaped(acme):
    """The diff of two versions (catalog/diff.html, catalog/_changes.html) — what a reviewer reads
    to see what a new version changes — draws the changed values and the text diff escaped, so a
    U+202E in the new version cannot make the change read other than it is."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        version_publish(actor=owner, source=FINANCE, message="domain")
        version_publish(actor=owner, source=agent_yaml("clerk"), message="v1")
        version_publish(actor=owner, source=_agent_with_text(), message="v2")
    response = client_for(acme, "viewer@acme.test").get("/agents/clerk/diff/?from=1&to=2")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="text-diff"' in html
    assert RLO not in html, "the version diff draws the U+202E raw"


def test_a_problems_caret_stays_under_its_column_in_a_line_drawn_escaped():
    """A listed line is drawn escaped, so the caret under a problem's column is padded by the
    escaped width of what comes before it: `\\u202e` takes six places where the source had one."""
    from apps.catalog.views import listing
    from foundry.manifests import Problem

    problem = Problem(code="x", message="m", line=1, column=4)
    line = listing(f"a{RLO}b: c\n", [problem]).lines[0]
    assert line.shown == "a\\u202eb: c"
    assert line.shown[len(line.marks[0]["pad"])] == ":"  # column 4 of the source: a, U+202E, b, then ":"
