"""The worker's side of a run: advance it as far as it can go, from wherever it stands.

`run_advance(run_id)` is called (inside the run's tenant schema) by the Celery task, once per
delivery. It holds the run's lock (locks.py) for the whole attempt, then asks the run's
checkpoints where the thread stands and does the one thing that fits: start it, resume it
with the approver's decision, recover it after a lost worker, or record the end that the
checkpoint already holds. Every delivery of the same run, in any order and any number of
times, leads to the same run.

Each completed step is written (Step, the usage ledger for a model call, the run's counters)
in one transaction before LangGraph commits its checkpoint; a recovered run replays those
steps from the Step rows instead of doing them again (foundry/runtime/graph.py, "Recovery").
"""

import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.catalog.models import Document, Kind
from apps.runs.checkpoints import checkpointer
from apps.runs.locks import RunLock
from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_create, run_finish
from apps.runs.usage import usage_record
from apps.tenants.models import Tenant
from foundry.errors import ServiceError
from foundry.runtime import (
    AgentGraph,
    NetworkPolicy,
    ProviderError,
    RunHooks,
    RunResult,
    RunStateError,
    ToolError,
    ToolOptions,
    provider_create,
)

logger = logging.getLogger(__name__)


class LockLost(Exception):
    """The run's lock expired under this worker: another may own the run now, so stop writing."""


def run_advance(run_id, *, depth: int = 0) -> str:
    """Advance a run as far as it goes now; the status it is left in ("locked" when another holds it)."""
    lock = RunLock(connection.schema_name, str(run_id))
    if not lock.acquire():
        return "locked"
    try:
        run = Run.objects.select_related("agent", "version", "domain_version").filter(pk=run_id).first()
        if run is None:
            return "missing"
        if run.is_finished:
            return run.status
        return Attempt(run, lock, depth).advance()
    finally:
        lock.release()


def _script(run: Run, manifest: dict) -> list:
    """The scripted provider's steps: the run's own, else those of the manifest test with the same input."""
    if run.script is not None:
        return run.script
    for test in manifest["spec"].get("tests") or ():
        if test.get("input") == run.input:
            return list(test.get("script") or ())
    return []


def http_policy(schema: str) -> NetworkPolicy:
    """What `http` tools of this tenant may reach: public addresses, plus the networks operators allowed."""
    networks = list(settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS)
    tenant = Tenant.objects.filter(schema_name=schema).first()
    if tenant is not None:
        networks += tenant.http_networks()
    return NetworkPolicy(allowed_networks=tuple(networks))


class Attempt:
    """One worker's attempt at a run, under its lock."""

    def __init__(self, run: Run, lock: RunLock, depth: int):
        self.run = run
        self.lock = lock
        self.depth = depth
        self.cancel_requested = run.cancel_requested_at is not None
        self.recorded: dict[int, tuple[dict, dict]] = {}

    # --- the attempt --------------------------------------------------------------------------
    def advance(self) -> str:
        run = self.run
        if self.cancel_requested and run.status != Run.Status.RUNNING:
            run_finish(run, Run.Status.CANCELLED, reason="cancelled", message="The run was cancelled.")
            return run.status
        if run.status == Run.Status.RUNNING:
            # Its last worker was lost mid-run (or the broker handed the task on): take over.
            run.recoveries += 1
            if run.recoveries > settings.FOUNDRY_RUN_MAX_RECOVERIES:
                run.save(update_fields=["recoveries"])
                run_finish(
                    run,
                    Run.Status.FAILED,
                    reason="worker_lost",
                    message=f"The run's worker was lost {run.recoveries} times; it is not tried again.",
                )
                return run.status
        now = timezone.now()
        run.status = Run.Status.RUNNING
        run.started_at = run.started_at or now
        run.updated_at = now
        run.save(update_fields=["status", "started_at", "updated_at", "recoveries"])
        try:
            result = self._continue()
        except LockLost:
            logger.warning("run %s: lock lost; leaving the run to the worker that holds it", run.pk)
            return "lock_lost"
        except (ProviderError, ServiceError, RunStateError) as exc:
            result = RunResult(status="failed", reason=exc.code, message=exc.message)
        return self._conclude(result)

    def _graph(self) -> AgentGraph:
        run = self.run
        manifest = run.version.content
        from apps.providers.services import provider_settings_for

        provider = provider_create(run.provider, provider_settings_for(manifest, script=_script(run, manifest)))
        tools = ToolOptions(network=http_policy(connection.schema_name), subagent=self._subagent)
        hooks = RunHooks(cancelled=self._cancelled, record=self._record, replay=self._replay)
        return AgentGraph(
            manifest,
            run.domain_version.content,
            provider=provider,
            checkpointer=checkpointer(connection.schema_name),
            tools=tools,
            hooks=hooks,
        )

    def _continue(self) -> RunResult:
        run = self.run
        graph = self._graph()
        thread = str(run.pk)
        state = graph.inspect(thread)
        if state.result is not None:
            return state.result
        if state.approval is not None:
            approval = run.approvals.filter(step=state.approval["step"]).first()
            if approval is None or approval.decision == Approval.Decision.PENDING:
                return self._waiting(state.approval)
            return graph.resume(
                thread,
                approved=approval.decision == Approval.Decision.APPROVED,
                by=approval.approver,
                comment=approval.comment,
            )
        if not state.started:
            return graph.start(thread, run.input)
        # Steps recorded after the last checkpoint: done by a lost worker, replayed rather than redone.
        self.recorded = {
            step.index: (step.record, step.replay)
            for step in run.steps.filter(index__gt=state.step_count).only("index", "record", "replay")
        }
        return graph.recover(thread)

    @staticmethod
    def _waiting(request: dict) -> RunResult:
        return RunResult(status="waiting_approval", approval=request)

    def _conclude(self, result: RunResult) -> str:
        run = self.run
        with transaction.atomic():
            run = self.run = Run.objects.select_for_update().get(pk=run.pk)
            if run.is_finished:
                return run.status
            if result.status == "waiting_approval":
                request = result.approval
                Approval.objects.get_or_create(
                    run=run,
                    step=request["step"],
                    defaults={
                        "tool": request["tool"],
                        "tool_call_id": request["tool_call_id"],
                        "arguments": request["arguments"],
                        "reasons": request["reasons"],
                    },
                )
                if run.cancel_requested_at is not None:
                    run_finish(run, Run.Status.CANCELLED, reason="cancelled", message="The run was cancelled.")
                else:
                    run.status = Run.Status.WAITING_APPROVAL
                    run.updated_at = timezone.now()
                    run.save(update_fields=["status", "updated_at"])
                return run.status
            run_finish(
                run, result.status, reason=result.reason or "", message=result.message or "", output=result.output
            )
        return run.status

    # --- hooks the graph calls ----------------------------------------------------------------
    def _cancelled(self) -> bool:
        if self.lock.lost:
            raise LockLost()
        return self.cancel_requested

    def _replay(self, index: int) -> tuple[dict, dict] | None:
        return self.recorded.get(index)

    def _record(self, step: dict, payload: dict) -> None:
        if self.lock.lost:
            raise LockLost()
        run = self.run
        is_model = step["node"] == "model"
        with transaction.atomic():
            Step.objects.create(
                run=run,
                index=step["index"],
                node=step["node"],
                tool=step.get("tool") or "",
                arguments=step.get("arguments"),
                status=step.get("status") or "ok",
                error=step.get("error") or "",
                summary=step.get("summary") or "",
                provider=step.get("provider") or "",
                model=step.get("model") or "",
                input_tokens=step.get("input_tokens", 0),
                output_tokens=step.get("output_tokens", 0),
                cached_tokens=step.get("cached_tokens", 0),
                duration_ms=step.get("duration_ms", 0.0),
                record=step,
                replay=payload,
            )
            if is_model:
                usage_record(
                    project=run.project,
                    agent=run.agent.name,
                    run_id=run.pk,
                    step=step["index"],
                    provider=step.get("provider") or run.provider,
                    model=step.get("model") or run.model,
                    input_tokens=step.get("input_tokens", 0),
                    output_tokens=step.get("output_tokens", 0),
                    cached_tokens=step.get("cached_tokens", 0),
                    latency_ms=step.get("duration_ms", 0.0),
                )
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE runs_run SET step_count = %s, input_tokens = input_tokens + %s,"
                    " output_tokens = output_tokens + %s, cached_tokens = cached_tokens + %s, updated_at = %s"
                    " WHERE id = %s RETURNING cancel_requested_at IS NOT NULL",
                    [
                        step["index"],
                        step.get("input_tokens", 0),
                        step.get("output_tokens", 0),
                        step.get("cached_tokens", 0),
                        timezone.now(),
                        run.pk,
                    ],
                )
                self.cancel_requested = cursor.fetchone()[0]

    def _subagent(self, name: str, text: str, seconds_left: float, key: str | None) -> str:
        """Run another deployed agent of this tenant as a child run, here in this worker."""
        if self.depth + 1 > settings.FOUNDRY_SUBAGENT_MAX_DEPTH:
            raise ToolError(
                "subagent_too_deep", f"Sub-agents may nest {settings.FOUNDRY_SUBAGENT_MAX_DEPTH} deep; this is deeper."
            )
        run = self.run
        index = int(key.rsplit(":", 1)[1]) if key else None
        child = Run.objects.filter(parent=run, parent_step=index).first() if index is not None else None
        if child is None:
            agent = Document.objects.filter(kind=Kind.AGENT, name=name).first()
            if agent is None:
                raise ToolError("subagent_not_found", f"This workspace has no agent {name!r}.")
            try:
                child = run_create(agent=agent, input=text, created_by=f"run {run.pk}", parent=run, parent_step=index)
            except ServiceError as exc:
                raise ToolError(exc.code, exc.message) from None
        deadline = time.monotonic() + seconds_left
        if not child.is_finished:
            run_advance(child.pk, depth=self.depth + 1)
            child.refresh_from_db()
        if child.status == Run.Status.SUCCEEDED:
            return child.output or ""
        if child.status == Run.Status.WAITING_APPROVAL:
            raise ToolError(
                "subagent_waiting_approval",
                f"The sub-agent's run {child.pk} waits for a human approval; it goes on once decided.",
            )
        if time.monotonic() > deadline:
            raise ToolError("subagent_timeout", f"The sub-agent's run {child.pk} took longer than this run had left.")
        raise ToolError("subagent_failed", f"The sub-agent's run {child.pk} {child.status}: {child.message}")
