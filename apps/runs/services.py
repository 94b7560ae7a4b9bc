"""Start, cancel and decide runs. Every change people make to a run goes through here; the
worker's side (executing a run) is engine.py.

A run is pinned at start to the agent's live deployment (its manifest and DIS versions), and
handed to a worker once the transaction that created it commits. A run waiting for approval
holds no worker: deciding the approval re-queues it, and the worker resumes it from its
checkpoint.
"""

from collections.abc import Mapping
from datetime import UTC

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from opentelemetry import trace

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.services import audit_record
from apps.billing.services import BUDGETS_ACCESS
from apps.catalog.models import Document, Kind
from apps.catalog.services import author_of
from apps.runs.locks import cancel_signal
from apps.runs.models import Approval, Run
from apps.tenants.models import Tenant
from apps.tokens.models import Scope
from foundry.db.text import UNSTORABLE
from foundry.errors import ServiceError
from foundry.metrics import run_finished
from foundry.runtime.rules import OVERAGE_TOOL
from foundry.text import text_readable

MAX_INPUT_CHARS = 100_000
MAX_SCRIPT_STEPS = 1000  # as many as a manifest's test script holds (agent.json), and as max_steps allows
MAX_COMMENT_CHARS = 2_000


def _actor_name(actor) -> str:
    name, email = author_of(actor)
    return email if getattr(actor, "token", None) is None and email else name


def _input_clean(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ServiceError("input_invalid", "A run needs an input: the request for the agent, as text.")
    if len(text) > MAX_INPUT_CHARS or UNSTORABLE.search(text):
        raise ServiceError("input_invalid", f"A run's input is at most {MAX_INPUT_CHARS} characters of text.")
    return text


def _script_clean(script, provider: str) -> list | None:
    """The scripted provider's steps for this run: a list of {tool_call: {tool, arguments}} | {respond}."""
    if script is None:
        return None
    if provider != "scripted":
        raise ServiceError(
            "script_invalid", f"A script is only for the scripted provider; this agent uses {provider!r}."
        )
    if not isinstance(script, list) or len(script) > MAX_SCRIPT_STEPS:
        raise ServiceError("script_invalid", f"A script is a list of at most {MAX_SCRIPT_STEPS} steps.")
    for number, step in enumerate(script, 1):
        valid = isinstance(step, Mapping) and len(step) == 1
        if valid and "respond" in step:
            valid = isinstance(step["respond"], str)
        elif valid and "tool_call" in step:
            call = step["tool_call"]
            valid = (
                isinstance(call, Mapping)
                and isinstance(call.get("tool"), str)
                and isinstance(call.get("arguments", {}), Mapping)
                and set(call) <= {"tool", "arguments"}
            )
        else:
            valid = False
        if not valid:
            raise ServiceError(
                "script_invalid",
                f"Script step {number} must be {{respond: text}} or {{tool_call: {{tool: name, arguments: {{…}}}}}}.",
            )
    return script


def _run_enqueue(run: Run) -> None:
    """Hand the run to a worker once the caller's transaction commits."""
    from django.db import connection

    from apps.runs.tasks import run_execute

    schema = connection.schema_name
    # robust: the run is committed; if the broker is away, the sweep (tasks.py) hands it to a
    # worker later, and the caller still gets its answer rather than an error for a done thing.
    transaction.on_commit(
        lambda: run_execute.apply_async(args=[schema, str(run.pk)], queue=settings.FOUNDRY_RUNS_QUEUE), robust=True
    )


def run_create(
    *, agent: Document, input: str, created_by: str, script=None, parent: Run | None = None, parent_step=None
) -> Run:
    """A queued run of the agent's live deployment (not yet handed to a worker)."""
    if agent.kind != Kind.AGENT:
        raise ServiceError("agent_not_found", f"{agent.name!r} is not an agent.", status=404)
    deployment = agent.live
    if deployment is None:
        raise ServiceError(
            "agent_not_deployed", f"Agent {agent.name!r} has no live deployment: deploy a version first.", status=409
        )
    version = deployment.version
    manifest = version.content
    model = manifest["spec"]["model"]
    # As the workspace has it now (a sub-agent's run: only if its parent's may too).
    trace_content = Tenant.objects.filter(schema_name=connection.schema_name, trace_content=True).exists()
    trace_content = trace_content and (parent is None or parent.trace_content)
    return Run.objects.create(
        agent=agent,
        deployment=deployment,
        version=version,
        domain_version=deployment.domain_version,
        project=manifest["metadata"].get("project", ""),
        provider=model["provider"],
        model=model["name"],
        input=_input_clean(input),
        script=_script_clean(script, model["provider"]),
        created_by=created_by[:255],
        parent=parent,
        parent_step=parent_step,
        trace_id=_current_trace_id(),
        trace_content=trace_content,
    )


def _current_trace_id() -> str:
    """The trace of the request or task under way (foundry/telemetry.py), or empty when none is
    recorded (telemetry off, or the trace not sampled: the viewer would have nothing to show)."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid and context.trace_flags.sampled else ""


def run_start(*, actor, agent: Document, input: str, script: list | None = None, request=None) -> Run:
    """Start a run of the agent's live deployment; a worker picks it up once this commits."""
    with transaction.atomic():
        actor = allowed_now(actor, Permission.RUNS_START, Scope.RUN)  # as they stand now, not as the request began
        run = run_create(agent=agent, input=input, script=script, created_by=_actor_name(actor))
        audit_record(
            action="run.start",
            actor=actor,
            target=run,
            data={"agent": agent.name, "version": run.version.number, "run": str(run.pk)},
            request=request,
        )
        _run_enqueue(run)
    return run


def _run_lock(run: Run) -> Run:
    return Run.objects.select_for_update().get(pk=run.pk)


def run_cancel(*, actor, run: Run, request=None) -> Run:
    """Cancel a run and its sub-agent runs. Not yet running (or waiting): at once. Running: its
    worker stops before its next step — a parent waiting on a child's step, once the child stops.
    Asked again while its worker stops it: the same answer, and nothing changed or recorded."""
    with transaction.atomic():
        run = _run_lock(run)
        actor = allowed_now(actor, Permission.RUNS_START, Scope.RUN)  # as they stand now, not as the request began
        if run.cancel_requested_at is not None:  # its sub-agents were cancelled with it
            # Asked again (a client retrying a cancel whose answer it lost): the same answer,
            # whether its worker is still stopping it or it ended at once.
            return run
        if run.is_finished:
            raise ServiceError("run_finished", f"The run has already {run.status}.", status=409)
        running = runs_cancel_locked([run], f"Cancelled by {_actor_name(actor)}.")
        audit_record(action="run.cancel", actor=actor, target=run, data={"run": str(run.pk)}, request=request)
        if running:  # their workers look for it before every step, then read the rows (locks.py)
            cancel_signal(connection.schema_name, running)
    return run


def runs_cancel_locked(runs: list[Run], message: str) -> list[str]:
    """Cancel `runs` (unfinished, their rows locked by the caller's transaction) and their sub-agent
    runs: those not running end at once, the others are marked for their workers; the ids of the
    running ones, whose workers the caller signals once it has committed (`cancel_signal`)."""
    running = []
    for run in runs:
        running += _cancel_one(run, message)
    parents = [run.pk for run in runs]
    while parents:  # sub-agents nest at most FOUNDRY_SUBAGENT_MAX_DEPTH deep
        # Every descendant, through finished ones too: a child that went on and finished may
        # have left a grandchild waiting for an approval.
        children = list(Run.objects.select_for_update().filter(parent_id__in=parents))
        for child in children:
            if not child.is_finished:
                running += _cancel_one(child, message)
        parents = [child.pk for child in children]
    return running


def _cancel_one(run: Run, message: str) -> list[str]:
    """Cancel `run`; [its id] when a worker is running it and must be told, else []."""
    now = timezone.now()
    run.cancel_requested_at = run.cancel_requested_at or now
    run.updated_at = now
    run.save(update_fields=["cancel_requested_at", "updated_at"])
    if run.status == Run.Status.RUNNING:
        return [str(run.pk)]
    run_finish(run, Run.Status.CANCELLED, reason="cancelled", message=message)
    return []


def run_finish(
    run: Run,
    status: str,
    *,
    reason: str = "",
    message: str = "",
    output: str | None = None,
    attempt: int | None = None,
    approvals: bool = True,
) -> bool:
    """Record how a run ended, unless it has ended already (or, given the `attempt` of a worker's
    claim, unless another worker has claimed it since); whether this call ended it.

    One conditional UPDATE, so a caller need not lock the row first (the worker finishing a run
    does not). The run's pending approvals are closed in the same transaction (`cancelled`, with
    the run): a run that ended however it did (cancelled, or failed by a worker that took it up
    while it waited) has no call left to decide. `approvals` False: the caller knows the run has
    none pending (a worker that did not find it waiting), and saves looking — and the transaction
    around the two (in autocommit, a BEGIN and a COMMIT more: the one UPDATE is atomic alone)."""
    if not approvals:
        return _run_end(run, status, reason=reason, message=message, output=output, attempt=attempt)
    with transaction.atomic(savepoint=False):
        ended = _run_end(run, status, reason=reason, message=message, output=output, attempt=attempt)
        if ended:
            # One save per approval (not QuerySet.update), so each closing is model history.
            for approval in run.approvals.filter(decision=Approval.Decision.PENDING):
                approval.decision, approval.decided_at = Approval.Decision.CANCELLED, run.finished_at
                approval.save(update_fields=["decision", "decided_at"])
    return ended


def _run_end(run: Run, status: str, *, reason: str, message: str, output: str | None, attempt: int | None) -> bool:
    now = timezone.now()
    fields = {
        "status": status,
        "reason": reason[:40],
        "message": message,
        "output": output,
        "finished_at": now,
        "updated_at": now,
    }
    unfinished = Run.objects.filter(pk=run.pk).exclude(status__in=Run.FINISHED)
    if attempt is not None:
        unfinished = unfinished.filter(attempt=attempt)
    if not unfinished.update(**fields):
        return False
    for name, value in fields.items():
        setattr(run, name, value)
    created = getattr(run, "created_at", None)
    seconds = (now - created).total_seconds() if created else None
    # Counted once the end is committed: an end rolled back (and retried) is no end.
    tenant = connection.schema_name
    transaction.on_commit(lambda: run_finished(tenant=tenant, outcome=status, seconds=seconds))
    return True


# Who decides a run's approvals (the API, the console, MCP); an overage takes BUDGETS_ACCESS too.
DECIDE_ACCESS = (Permission.RUNS_APPROVE, Scope.RUN)


def may_approve_overage(actor) -> bool:
    """Whether `actor` may approve a run's overage: what setting a budget takes."""
    permission, scope = BUDGETS_ACCESS
    return actor.has_permission(permission) and (not hasattr(actor, "has_scope") or actor.has_scope(scope))


def run_decide(
    *,
    actor,
    run: Run,
    approved: bool,
    comment: str = "",
    step: int | None = None,
    requested_at=None,
    request=None,
) -> Run:
    """Approve or reject the tool call the run waits for; the run goes back to a worker.

    `step` and `requested_at` are the step and the time of the question the approver was shown:
    if the run now waits at another step, or asked again at that step since (an overage whose
    budgets changed while it waited is put to the approvers again, as it stands then), the
    decision is refused (`approval_stale`) rather than applied to a question nobody reviewed."""
    # Checked as given (str.strip() takes control characters such as U+0085 or U+001F for spaces:
    # stripped first, they would be dropped instead of refused), its length once stripped.
    comment = comment or ""
    readable = not UNSTORABLE.search(comment) and text_readable(comment, lines=True)
    comment = comment.strip()
    if not readable or len(comment) > MAX_COMMENT_CHARS:
        raise ServiceError(
            "comment_invalid",
            f"A comment is at most {MAX_COMMENT_CHARS} characters, without control or text-direction characters.",
        )
    with transaction.atomic():
        run = _run_lock(run)
        # The decider as they stand now, not as their request read them: one removed, demoted, or
        # whose token was revoked while this waited for the run's row decides nothing.
        actor = allowed_now(actor, *DECIDE_ACCESS)
        decision = Approval.Decision.APPROVED if approved else Approval.Decision.REJECTED
        approval = run.approvals.filter(decision=Approval.Decision.PENDING).first()
        if (
            step is not None
            and (approval is None or approval.step != step)
            and run.approvals.filter(step=step, decision=decision, approver=_actor_name(actor)[:255]).exists()
        ):
            # This decision, by this decider, is recorded at that step, and nothing is asked there
            # now: a retry of the request whose answer was lost, answered as it was, and nothing
            # decided or recorded again. (Asked again at that step since, the new question is decided.)
            return run
        if run.status != Run.Status.WAITING_APPROVAL or approval is None:
            raise ServiceError("run_not_waiting", "The run is not waiting for an approval.", status=409)
        if step is not None and approval.step != step:
            raise ServiceError(
                "approval_stale",
                f"The run now waits at step {approval.step}, not {step}: look at that call before deciding.",
                status=409,
            )
        if requested_at is not None and timezone.is_naive(requested_at):
            requested_at = requested_at.replace(tzinfo=UTC)  # a time without its zone is UTC, as elsewhere
        if requested_at is not None and approval.requested_at != requested_at:
            raise ServiceError(
                "approval_stale",
                f"The question at step {approval.step} was asked again since (its reasons changed): look at it "
                "before deciding.",
                status=409,
            )
        if approved and approval.tool == OVERAGE_TOOL and not may_approve_overage(actor):
            # Going past a budget is a budget decision: whoever may approve a run's tool call may
            # turn the overage down, but only who sets budgets lets a run spend past one.
            raise PermissionDenied(
                "Approving an overage takes what setting a budget takes: an admin or an owner "
                "(settings.manage; a token with the admin scope)."
            )
        approval.decision = decision
        approval.approver = _actor_name(actor)[:255]
        approval.comment = comment
        approval.decided_at = timezone.now()
        approval.save(update_fields=["decision", "approver", "comment", "decided_at"])
        run.status = Run.Status.QUEUED
        run.updated_at = approval.decided_at
        run.save(update_fields=["status", "updated_at"])
        audit_record(
            action="run.approve" if approved else "run.reject",
            actor=actor,
            target=run,
            data={"run": str(run.pk), "step": approval.step, "tool": approval.tool, "comment": comment},
            request=request,
        )
        _run_enqueue(run)
    return run
