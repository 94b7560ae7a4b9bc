"""Console pages for runs: the list, starting a run, and a run's page with its timeline of steps,
the approval it waits for, and cancel.

A live run's page polls a fragment of itself (`run_live`) every second; the fragment answers 204
while nothing changed, so a comment being typed into the approval form is not swept away, and
stops polling once the run has finished. Every write goes through apps.runs.services.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models.fields.json import KeyTransform
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.access import require_permission
from apps.accounts.permissions import Permission
from apps.catalog.models import Document, Kind
from apps.catalog.selectors import without_version_bodies
from apps.runs.apis import RUNS
from apps.runs.forms import DecisionForm, RunFilterForm, RunStartForm
from apps.runs.models import Approval, Run, Step
from apps.runs.services import may_approve_overage, run_cancel, run_decide, run_start
from foundry.errors import ServiceError
from foundry.filtering.errors import FilterError
from foundry.filtering.pagination import Page, paginate
from foundry.pages import PER_PAGE, page_query
from foundry.text import json_shown

# The steps a run's page shows, its latest (as MCP's get_run shows 200): the API lists them all.
MAX_STEPS_SHOWN = 200
# The decided approvals its table shows, the latest (a run may ask at every step): the API lists them all.
MAX_APPROVALS_SHOWN = 200


@dataclass
class TimelineStep:
    step: Step
    arguments: str

    @property
    def tokens(self) -> int:
        return self.step.input_tokens + self.step.output_tokens

    @property
    def warnings(self) -> list:
        warnings = self.step.shown_warnings  # the record's `warnings`, read alone (_live_context)
        return warnings if isinstance(warnings, list) else []


def _json(value) -> str:
    if value in (None, {}, []):
        return ""
    # A model's arguments, shown to the person who approves the call: as they read, never reordered.
    return json_shown(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def _run(run_id: str) -> Run:
    """The run with this id, or 404 — also when the id is not a UUID at all."""
    try:
        pk = uuid.UUID(run_id)
    except ValueError:
        raise Http404("No such run.") from None
    return get_object_or_404(
        Run.objects.select_related("agent", "version", "domain_version__document", "parent__agent"), pk=pk
    )


def _agent_names(*, deployed: bool = False) -> list[str]:
    agents = Document.objects.filter(kind=Kind.AGENT)
    if deployed:
        agents = agents.filter(live__isnull=False)
    return list(agents.order_by("name").values_list("name", flat=True))


def _live_version(run: Run, decisions: list[str], steps: int) -> str:
    """A key that changes whenever anything the live part of a run's page shows does: from the
    run's row, how many steps it has, its approvals' decisions and its sub-agent runs' rows (a
    child starts during its parent's step and may end while the parent waits), without reading
    the steps."""
    children = [
        [str(pk), status, count, updated.isoformat()]
        for pk, status, count, updated in run.children.order_by("parent_step", "pk").values_list(
            "pk", "status", "step_count", "updated_at"
        )
    ]
    state = [run.status, run.updated_at.isoformat(), run.step_count, steps, decisions, children]
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]


def _decisions(run: Run) -> list[str]:
    """Its approvals' decisions, in step order: read alone (a run may ask up to one per step, each
    with its call's arguments, and a waiting run's page asks every second)."""
    return list(run.approvals.order_by("step").values_list("decision", flat=True))


def _live_context(request: HttpRequest, run: Run, *, decisions: list[str] | None = None, **extra) -> dict:
    """What the live part of a run's page shows, and its version (_live_version): the pending
    approval whole, the latest MAX_APPROVALS_SHOWN decided ones without the calls' arguments."""
    decisions = _decisions(run) if decisions is None else decisions
    pending = run.approvals.filter(decision=Approval.Decision.PENDING).order_by("step").first()
    decided = run.approvals.exclude(decision=Approval.Decision.PENDING).defer("arguments", "reasons", "caps")
    decided = list(decided.order_by("-step")[:MAX_APPROVALS_SHOWN])[::-1]
    # The last MAX_STEPS_SHOWN steps (a run may take 1,000, the page is polled every second while
    # it changes), without their records but for the warnings shown: the API lists them all.
    shown = run.steps.defer("replay", "record").annotate(shown_warnings=KeyTransform("warnings", "record"))
    steps = list(shown.order_by("-index")[:MAX_STEPS_SHOWN])[::-1]
    total = len(steps) if len(steps) < MAX_STEPS_SHOWN else run.steps.count()
    version = _live_version(run, decisions, total)
    user = request.user
    return {
        "run": run,
        "timeline": [TimelineStep(step, _json(step.arguments)) for step in steps],
        "steps_hidden": total - len(steps),
        "decided": decided,
        "decided_hidden": sum(decision != Approval.Decision.PENDING for decision in decisions) - len(decided),
        "pending": pending,
        "pending_arguments": _json(pending.arguments) if pending else "",
        "version": version,
        "can_approve": user.has_permission(Permission.RUNS_APPROVE),
        # An overage: approved only by who may set budgets; the others who decide runs may reject it.
        "can_approve_overage": may_approve_overage(user),
        "can_cancel": user.has_permission(Permission.RUNS_START) and not run.is_finished,
        "decision_form": DecisionForm(),
        # Sub-agent runs, as they start and end (their rows are in the version): shown by the poll too.
        "children": run.children.select_related("agent").order_by("parent_step"),
        **extra,
    }


def _run_page(request: HttpRequest, run: Run, *, status: int = 200, **extra) -> HttpResponse:
    return render(request, "runs/run_detail.html", _live_context(request, run, **extra), status=status)


# --- pages ------------------------------------------------------------------------------------


@require_permission(Permission.RUNS_VIEW)
@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    """The runs, newest first, a page at a time by key (`?page_token=`, as the API pages them): no
    count of every run and no offset read past, however long the workspace's history."""
    form = RunFilterForm(request.GET, agents=_agent_names())
    runs = Run.objects.select_related("agent", "version")
    status, error, page = 200, None, Page([], "")
    token = request.GET.get("page_token") or None
    if form.is_valid():
        chosen = {name: form.cleaned_data[name] for name in ("status", "agent") if form.cleaned_data[name]}
        if "status" in chosen:
            runs = runs.filter(status=chosen["status"])
        if "agent" in chosen:
            runs = runs.filter(agent__name=chosen["agent"])
        try:
            page = paginate(
                without_version_bodies(runs, "version"),
                resource="console-runs",
                ordering=RUNS.ordering.default,
                filter_text=urlencode(sorted(chosen.items())),  # a token is for the filters it was made under
                page_size=PER_PAGE,
                page_token=token,
            )
        except FilterError as e:
            status, error = 400, e
    else:
        status = 400
    query = page_query(request, "page_token")
    context = {
        "form": form,
        "runs": page.items,
        "next_page_token": page.next_page_token,
        "paged": bool(token),
        "query": query,
        "error": error,
        "can_start": request.user.has_permission(Permission.RUNS_START),
    }
    return render(request, "runs/run_list.html", context, status=status)


@require_permission(Permission.RUNS_START)
@require_http_methods(["GET", "HEAD", "POST"])
def run_new(request: HttpRequest) -> HttpResponse:
    """Start a run of a deployed agent (`?agent=` preselects one)."""
    agents = _agent_names(deployed=True)
    if request.method != "POST":
        form = RunStartForm(initial={"agent": request.GET.get("agent")}, agents=agents)
        return render(request, "runs/run_new.html", {"form": form})
    form = RunStartForm(request.POST, agents=agents)
    if form.is_valid():
        agent = Document.objects.select_related("live__version", "live__domain_version").get(
            kind=Kind.AGENT, name=form.cleaned_data["agent"]
        )
        try:
            run = run_start(actor=request.user, agent=agent, input=form.cleaned_data["input"], request=request)
        except ServiceError as e:
            form.add_error("agent" if e.code == "agent_not_deployed" else "input", e.message)
            return render(request, "runs/run_new.html", {"form": form}, status=e.status)
        messages.success(request, f"Run of {agent.name} started.")
        return redirect("runs:run_detail", run.pk)
    return render(request, "runs/run_new.html", {"form": form}, status=400)


@require_permission(Permission.RUNS_VIEW)
@require_safe
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    return _run_page(request, _run(run_id))


@require_permission(Permission.RUNS_VIEW)
@require_safe
def run_live(request: HttpRequest, run_id: str) -> HttpResponse:
    """The live part of a run's page; 204 when it is still the version the page shows (`?v=`),
    known without reading the steps (a tab open on a run waiting for hours polls every second)."""
    run = _run(run_id)
    decisions = _decisions(run)
    if request.GET.get("v") == _live_version(run, decisions, run.steps.count()):
        return HttpResponse(status=204)
    return render(request, "runs/_run_live.html", _live_context(request, run, decisions=decisions))


@require_permission(Permission.RUNS_START)
@require_POST
def run_cancel_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = _run(run_id)
    try:
        run = run_cancel(actor=request.user, run=run, request=request)
    except ServiceError as e:
        return _run_page(request, run, status=e.status, error=e)
    if run.is_finished:
        messages.success(request, "Run cancelled.")
    else:
        messages.info(request, "Cancellation requested: the run stops before its next step.")
    return redirect("runs:run_detail", run.pk)


@require_permission(Permission.RUNS_APPROVE)
@require_POST
def run_decide_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = _run(run_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _run_page(request, run, status=400, decision_form=form)
    approved = form.cleaned_data["decision"] == "approve"
    try:
        run_decide(
            actor=request.user,
            run=run,
            approved=approved,
            comment=form.cleaned_data["comment"],
            step=form.cleaned_data["step"],
            requested_at=form.cleaned_data["requested_at"],
            request=request,
        )
    except ServiceError as e:
        return _run_page(request, run, status=e.status, error=e, decision_form=form)
    messages.success(request, "Approved: the run continues." if approved else "Rejected: the run continues without it.")
    return redirect("runs:run_detail", run.pk)
