"""WCAG 2.1 AA points of the server-rendered console beside those of
tests/console/test_accessibility.py, checked on the HTML the Django test client gets (parsed with
that module's small DOM, standard library only)."""

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.models import Export
from apps.runs.models import Run
from tests.conftest import client_for
from tests.console.test_accessibility import Node, Page, in_live_region
from tests.lifecycle.test_export_lost_polls import worker_holding
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run, waiting_run

FOCUSABLE = ("a", "button", "select", "textarea", "input")


def _owner(acme):
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    return client


def _focusable(node: Node) -> bool:
    if node.tag == "a":
        return "href" in node.attrs
    if node.tag == "input":
        return node.attrs.get("type") != "hidden"
    return node.tag in FOCUSABLE


# --- WCAG 3.3.2 / 1.3.1: instructions tied to their field -----------------------------------------


def test_approval_comment_help_text_is_shown_and_associated(acme):
    """WCAG 3.3.2 / 1.3.1: the approval form's comment field (DecisionForm.comment) has the help
    text "Recorded with your decision.", and Django renders the textarea with
    aria-describedby="id_comment_helptext": the help text is shown under that id, so the approver
    is told the comment goes on the record with the decision (the reference named no element)."""
    run = waiting_run(acme, deploy(acme, FINANCE, TRIAGE))
    page = Page(_owner(acme).get(f"/runs/{run.pk}/").content.decode())
    comment = page.find("textarea", name="comment")
    assert not page.dangling_references(comment), (
        f"aria-describedby={comment.attrs.get('aria-describedby')!r} names no element on the run page"
    )
    assert "Recorded with your decision" in page.described_by(comment)


# --- WCAG 3.3.1 / 1.3.1: errors tied to their field -----------------------------------------------


def test_token_scopes_error_is_associated_with_the_scope_checkboxes(acme):
    """WCAG 3.3.1 / 1.3.1: issuing a token with no scope ticked re-shows the form (400) with
    "This field is required." under id_scopes_error. Django marks every scope checkbox
    aria-invalid="true", and the <fieldset> that groups them names the error (aria-describedby),
    so a screen reader user on the invalid checkboxes hears why, not only that they are invalid."""
    response = _owner(acme).post("/settings/tokens/new/", {"name": "ci", "role": "viewer", "expires_in": "30d"})
    assert response.status_code == 400
    page = Page(response.content.decode())
    assert "id_scopes_error" in page.ids, "the scopes error is not shown"
    boxes = page.find_all("input", name="scopes")
    assert boxes and all(b.attrs.get("aria-invalid") == "true" for b in boxes)
    fieldset = next(a for a in boxes[0].ancestors() if a.tag == "fieldset")
    described = " ".join([page.described_by(fieldset), page.described_by(boxes[0])])
    assert "required" in described, "the scope checkboxes (and their fieldset) are not described by the error"


FORMS_WITH_FIELD_ERRORS = [
    # (path, posted data, the field error the page shows)
    ("/members/add/", {"email": "not-an-email", "role": "viewer"}, "Enter a valid email address."),
    ("/settings/tokens/new/", {"name": "", "role": "viewer", "scopes": ["read"]}, "This field is required."),
    ("/settings/providers/openai/", {"openai-api_key": ""}, "An API key is required."),
    ("/settings/sso/", {"issuer": "https://idp.example.com", "client_id": ""}, "This field is required."),
    ("/settings/audit-sinks/", {"name": "BAD NAME", "kind": "webhook", "format": "jsonl"}, "valid"),
    ("/usage/budgets/", {"monthly_tokens": "lots", "on_exhausted": "stop"}, "A whole number of tokens."),
    ("/settings/retention/", {"runs_days": "-5", "initial-runs_days": ""}, "a whole number of days"),
    ("/runs/new/", {"agent": "invoice-triage", "input": ""}, "This field is required."),
]


def test_forms_reshown_with_field_errors_announce_them(acme):
    """WCAG 3.3.1 / 4.1.3: a form posted with a bad field comes back (400) with its errors under the
    fields, and the page says it was refused where a screen reader tells it at once: its title
    ("Error: ...") and the console's alert region, as the console's other refusals are announced
    (it sounded as the same page loading again). Pages: FORMS_WITH_FIELD_ERRORS (members, tokens,
    providers, SSO, sinks, budgets, retention, run start)."""
    deploy(acme, FINANCE, TRIAGE)  # /runs/new/ shows its form once an agent is deployed
    client = _owner(acme)
    silent = []
    for path, data, error in FORMS_WITH_FIELD_ERRORS:
        response = client.post(path, data)
        assert response.status_code == 400, (path, response.status_code)
        page = Page(response.content.decode())
        shown = [n for n in page.nodes if n.tag == "ul" and "errorlist" in n.attrs.get("class", "")]
        assert any(error in n.text_content() for n in shown), f"{path}: the error {error!r} is not shown"
        announced = [
            n
            for n in page.nodes
            if (n.attrs.get("role") in ("alert", "status") or n.attrs.get("aria-live") in ("polite", "assertive"))
            and n.text_content().strip()
        ]
        if not announced and "error" not in page.find("title").text_content().lower():
            silent.append(path)
    assert not silent, f"re-shown with field errors and no alert, live region or title saying so: {silent}"


# --- WCAG 2.4.3 / 4.1.3: regions refreshed by polling ---------------------------------------------


def _running_run_page(acme):
    agent = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, agent, status=Run.Status.RUNNING, step_count=1, started_at=timezone.now())
    make_run(acme, agent, parent=run, parent_step=1, status=Run.Status.SUCCEEDED)  # a sub-agent run
    client = _owner(acme)
    page = Page(client.get(f"/runs/{run.pk}/").content.decode())
    live = page.find("div", id="run-live")
    regions = [r.strip().lstrip("#") for r in live.attrs["hx-select-oob"].split(",")]
    return page, regions


def _export_page(acme):
    now = timezone.now()
    with schema_context(acme.schema_name):
        Export.objects.create(
            status=Export.Status.SUCCEEDED, created_by="owner@acme.test", file="x.zip", size=1024,
            sha256="0" * 64, finished_at=now, expires_at=now + timedelta(days=1),
        )  # fmt: skip
        running = Export.objects.create(
            status=Export.Status.RUNNING, created_by="owner@acme.test", rows_total=10, rows_done=3
        )
    with worker_holding(acme, running):  # else it is failed as lost when the page is read
        page = Page(_owner(acme).get("/settings/data-export/").content.decode())
    rows = page.find("div", id="export-rows")
    assert "every" in rows.attrs.get("hx-trigger", "") and rows.attrs.get("hx-swap") == "outerHTML"
    return page, ["export-rows"]


def test_polled_regions_do_not_drop_keyboard_focus(acme):
    """WCAG 2.4.3 Focus Order (and the brief: auto-refresh must not steal focus): htmx 2 puts focus
    back after a swap only on an element with the same id as the one that had it (htmx-2.0.11
    swap: `if (t.elt && !bodyContains(t.elt) && id) focus(getElementById(id))`). The run page
    replaces #run-actions and #run-more on every poll that sees a change (each new step), the
    export list replaces #export-rows every second while an export runs. Their buttons and links
    (Cancel run, a sub-agent run's link, an export's Download link) have ids, so a keyboard user
    resting on one keeps the place at the next refresh (without, focus went back to the top).
    Pages: a running run (/runs/<id>/), the data export list (/settings/data-export/)."""
    lost = []
    for page, regions in (_running_run_page(acme), _export_page(acme)):
        for region in regions:
            for node in page.ids[region].descendants():
                if _focusable(node) and not node.attrs.get("id"):
                    lost.append(f"#{region} <{node.tag}> {node.text_content().strip()[:30]!r}")
    assert not lost, f"focus on these is lost at each refresh: {lost}"


def test_export_progress_and_completion_are_announced(acme):
    """WCAG 4.1.3 Status Messages: while an export runs, /settings/data-export/ re-renders
    #export-rows as it goes Queued -> Running -> Succeeded/Failed; the status it is in is said in
    a live region that stays on the page (role=status), rewritten out of band by the poll when a
    status changes (tests/console/test_refusals_announced.py), so a screen reader user is told
    the export finished or failed, as the run page tells a run's status, and not read the
    table at each refresh (the table is in no live region)."""
    page, _ = _export_page(acme)
    said = page.ids["export-announce"]
    assert in_live_region(said.parent) and said.text_content().strip() == "Latest export: running."
    assert not in_live_region(page.ids["export-rows"])
