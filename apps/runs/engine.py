"""The worker's side of a run: advance it as far as it can go, from wherever it stands.

`run_advance(run_id)` is called (inside the run's tenant schema) by the Celery task, once per
delivery. It holds the run's lock (locks.py) for the whole attempt, claims the run (one UPDATE
that marks it running and returns it with its pinned manifest and DIS), then asks the run's
checkpoints where the thread stands and does the one thing that fits: start it, resume it
with the approver's decision, recover it after a lost worker, or record the end that the
checkpoint already holds. Every delivery of the same run, in any order and any number of
times, leads to the same run.

Each completed step is written (Step, the usage ledger for a model call, the run's counters)
in one SQL statement, so atomically, before LangGraph commits its checkpoint; a recovered run
replays those steps from the Step rows instead of doing them again (foundry/runtime/graph.py,
"Recovery").
"""

import contextlib
import ipaddress
import json
import logging
import re
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import OperationalError as PsycopgOperationalError
from psycopg.pq import TransactionStatus
from redis.exceptions import RedisError

from apps.audit.models import Outcome
from apps.audit.services import audit_record
from apps.billing.models import UsageRecord
from apps.billing.quotas import quota_check
from apps.catalog.models import Document, Kind
from apps.identity.service_tokens import own_workspace_headers
from apps.runs.checkpoints import checkpointer
from apps.runs.locks import LockLost, RunLock
from apps.runs.models import Approval, Run
from apps.runs.services import run_create, run_finish
from apps.runs.usage import USAGE_RESULT, usage_ctes, usage_guard, usage_written
from apps.tenants.models import Tenant
from foundry.db.columns import columns_of
from foundry.db.text import UNSTORABLE
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
from foundry.runtime.rules import OVERAGE_TOOL

ACTIVE = TransactionStatus.ACTIVE  # a statement under way on the connection

logger = logging.getLogger(__name__)

# Marks a run running and returns it, with whether it had been started, its agent's name, its
# pinned manifest and DIS, and its tenant's id and trace-content setting; no row when it may not
# run now (finished, cancelled, or lost too often), which `_unclaimed` then settles. `before`
# locks the row and keeps its values from before the UPDATE.
_CLAIM = """
WITH before AS (SELECT id, started_at, status FROM runs_run WHERE id = %(id)s FOR UPDATE)
UPDATE runs_run AS run
   SET status = %(running)s, started_at = coalesce(run.started_at, %(now)s), updated_at = %(now)s,
       recoveries = run.recoveries + (run.status = %(running)s)::int, attempt = run.attempt + 1
  FROM before, catalog_document AS agent, catalog_version AS version, catalog_version AS domain,
       public.tenants_tenant AS tenant
 WHERE run.id = before.id AND agent.id = run.agent_id AND version.id = run.version_id
   AND domain.id = run.domain_version_id AND tenant.schema_name = %(schema)s
   AND (run.status IN (%(queued)s, %(waiting)s) AND run.cancel_requested_at IS NULL
        OR run.status = %(running)s AND run.recoveries < %(max_recoveries)s)
RETURNING {run_columns}, before.started_at IS NOT NULL AS was_started, before.status = %(waiting)s AS was_waiting,
          agent.name AS agent_name, tenant.id AS tenant_pk, tenant.trace_content AS tenant_trace_content,
          tenant.http_allowed_networks AS tenant_http_networks,
          version.content::text AS manifest_json, domain.content::text AS domain_json
""".replace("{run_columns}", columns_of(Run, "run"))

# One step, fenced by the claim's `attempt`: the run's counters, its Step row and the usage record
# of a model call ({usage}: usage.py's CTEs, or nothing), all written only while the run is still
# this attempt's. Returns whether the run's cancellation was asked for and what usage.py's
# USAGE_RESULT selects (the usage record's id: none when that step was counted already); no row
# when another worker has claimed the run since.
_RECORD = """
WITH run AS (
    UPDATE runs_run SET step_count = %s, input_tokens = input_tokens + %s, output_tokens = output_tokens + %s,
           cached_tokens = cached_tokens + %s, updated_at = %s
     WHERE id = %s AND attempt = %s
    RETURNING cancel_requested_at IS NOT NULL AS cancelled
), {usage}step AS (
    INSERT INTO runs_step (run_id, "index", node, tool, arguments, status, error, summary, provider, model,
                           input_tokens, output_tokens, cached_tokens, duration_ms, record, replay, created_at)
    SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM run
)
SELECT cancelled, {usage_result} FROM run
"""


# What a signalled run reads before its next step: whether it was cancelled, its attempt, and the
# `updated_at` of its provider's credential (NULL: none; the scripted provider takes none).
_SIGNALLED = """
SELECT run.cancel_requested_at IS NOT NULL, run.attempt,
       (SELECT c.updated_at FROM providers_providercredential c WHERE c.provider = %s)
  FROM runs_run run WHERE run.id = %s
"""


class ChildBusy(Exception):
    """A sub-agent's run is locked by another worker: this run's step waits for it, later."""


class TenantSuspended(Exception):
    """The run's tenant was suspended: stop before the next step and leave the run as it is; it
    goes on from its checkpoint once the tenant is resumed (the sweep hands it back)."""


class SettingsChanged(Exception):
    """A workspace setting the attempt's tools or provider were built from changed since it read
    it: stop before the next step; the run goes on from its checkpoint in a fresh attempt, built
    from the settings as they are then."""


class WorkerStopping(SettingsChanged):
    """The worker is shutting down (a deploy's SIGTERM): stop before the next step, back in the
    queue, where another worker takes the run on from its checkpoint (not counted as a lost worker)."""


class NetworksChanged(SettingsChanged):
    """The private networks the tenant's http tools and model providers may reach changed."""


class ProviderChanged(SettingsChanged):
    """The workspace's credential for the run's model provider was replaced (its key, its
    endpoint): the next model call goes out with the credential as it is now, never the old one."""


# Failures of the platform's own services — the database (through Django, or psycopg's own for
# the checkpointer), Redis — which put the run back in the queue for its task to retry later:
# the task retries exactly these (tasks.py).
TRANSIENT = (OperationalError, InterfaceError, PsycopgOperationalError, RedisError)
_APPROVAL_LOST = (
    "The run asked again for the approval of step {step}, decided already: its checkpoints are not being kept."
)
# How often a running run looks at whether its tenant is still active, in seconds.
TENANT_CHECK_SECONDS = 5.0


def _asked_anew(approval: Approval, request: dict) -> bool:
    """Whether a run asking at a step whose approval is decided asks another question: an overage
    whose budgets changed while it waited (foundry/runtime/graph.py `_model`), or reached again in
    another month (each cap's key names its month, which the reasons' text need not) — not the same
    question again, which a checkpoint database that lost the interrupt makes it ask."""
    if request.get("kind") != "overage":
        return False
    caps = request.get("caps")
    return storable(request.get("reasons")) != approval.reasons or (
        approval.caps is not None and isinstance(caps, list) and sorted(map(str, caps)) != sorted(approval.caps)
    )


def _caps(request: dict) -> list[str] | None:
    """The budgets an overage request asks to spend past (their keys), as its approval keeps them."""
    caps = request.get("caps") if request.get("kind") == "overage" else None
    return sorted(str(cap) for cap in caps) if isinstance(caps, list) else None


# How repr() spells a NUL and a lone surrogate: a container whose repr has neither holds no text
# to replace (a backslash written before such letters only sends it the long way).
_MAYBE_UNSTORABLE = re.compile(r"\\x00|\\ud[89a-f]")


def storable(value):
    """`value` with the text PostgreSQL cannot store (NUL, lone surrogates) replaced by U+FFFD,
    whatever a model or a remote service answered."""
    if isinstance(value, str):
        return UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict | list | tuple) and _MAYBE_UNSTORABLE.search(repr(value)) is None:
        return value  # one pass in C instead of a copy of every string
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def run_advance(run_id) -> str:
    """Advance a run as far as it goes now; the status it is left in ("locked" when another holds it)."""
    lock = RunLock(connection.schema_name, str(run_id))
    if not lock.acquire():
        return "locked"
    try:
        claimed = _run_claim(run_id)
        if claimed is None:
            return _unclaimed(run_id)
        return Attempt(claimed, lock).advance()
    finally:
        lock.release()


def _statement_abandoned() -> None:
    """Celery's soft time limit is raised by a signal handler wherever the main thread is: in a
    statement outside a transaction, it leaves Django's connection with that statement under way,
    and every later one on it fails ("another command is already in progress"), the run's
    requeue too. Such a connection is closed (the next statement opens another), as Django closes
    one whose transaction it cannot roll back."""
    conn = connection.connection
    if conn is not None and not connection.in_atomic_block and conn.pgconn.transaction_status == ACTIVE:
        connection.close()


def _run_claim(run_id) -> Run | None:
    params = {
        "id": run_id,
        "schema": connection.schema_name,
        "now": timezone.now(),
        "queued": Run.Status.QUEUED,
        "running": Run.Status.RUNNING,
        "waiting": Run.Status.WAITING_APPROVAL,
        "max_recoveries": settings.FOUNDRY_RUN_MAX_RECOVERIES,
    }
    return next(iter(Run.objects.raw(_CLAIM, params)), None)


def _children_stop(run_id) -> None:
    """A cancelled run's unfinished sub-agent runs, ended before it (docs/runs.md: a child stops
    before its next step, and the parent after it). A child has no task of its own: its parent's
    attempt advances it, and a parent ending now never will again — a child left running when
    its worker was lost would run on until the sweep. Each is advanced once more, here, and its
    attempt ends it at once; one another worker holds ends at its own next step."""
    unfinished = Run.objects.filter(parent_id=run_id, cancel_requested_at__isnull=False).exclude(
        status__in=Run.FINISHED
    )
    for child in unfinished.values_list("pk", flat=True):
        run_advance(child)


def _unclaimed(run_id) -> str:
    """Why the run may not run now, recorded: the status it is left in ("missing": no such run)."""
    if Run.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exclude(status__in=Run.FINISHED).exists():
        _children_stop(run_id)
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return "missing"
        if run.is_finished:
            return run.status
        if run.cancel_requested_at is not None:  # a cancellation wins, also over a lost worker
            run_finish(run, Run.Status.CANCELLED, reason="cancelled", message="The run was cancelled.")
        elif run.status == Run.Status.RUNNING and run.recoveries >= settings.FOUNDRY_RUN_MAX_RECOVERIES:
            # Its last worker was lost mid-run once more than is allowed.
            run.recoveries += 1
            run.save(update_fields=["recoveries"])
            run_finish(
                run,
                Run.Status.FAILED,
                reason="worker_lost",
                message=f"The run's worker was lost {run.recoveries} times; it is not tried again.",
            )
        return run.status


def _script(run: Run, manifest: dict) -> list:
    """The scripted provider's steps: the run's own, else those of the manifest test with the same input."""
    if run.script is not None:
        return run.script
    for test in manifest["spec"].get("tests") or ():
        if test.get("input") == run.input:
            return list(test.get("script") or ())
    return []


def http_policy(networks: list[str]) -> NetworkPolicy:
    """What `http` tools of this tenant may reach: public addresses, plus the networks operators
    allowed it (`networks`, as the attempt's claim read them) and every tenant."""
    allowed = [*settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS, *map(ipaddress.ip_network, networks)]
    return NetworkPolicy(allowed_networks=tuple(allowed))


class Attempt:
    """One worker's attempt at a run, under its lock, on the run as `_run_claim` returned it."""

    def __init__(self, run: Run, lock: RunLock):
        self.run = run
        self.lock = lock
        self.attempt = run.attempt  # the number this attempt's claim gave the run: its fence
        self.started = run.was_started  # False: the thread has no checkpoint yet
        # Claimed while it waited for an approval (a copy of its task delivered meanwhile): only
        # such an attempt can end the run with an approval still pending, which run_finish closes.
        self.was_waiting = run.was_waiting
        self.agent_name = run.agent_name
        # The run's tenant, and whether it lets traces carry prompts and completions, as it is now.
        # Content on its model calls only if the run was started under it and it is still on.
        self.tenant_id = run.tenant_pk
        self.trace_content = run.tenant_trace_content and run.trace_content
        self.month_totals = None  # the month's usage as this attempt's last model call left it
        self.manifest = json.loads(run.manifest_json)
        self.domain = json.loads(run.domain_json)
        self.cancel_requested = run.cancel_requested_at is not None
        self.recorded: dict[int, tuple[dict, dict]] = {}
        self.tenant_checked = time.monotonic()  # the task checked it just before
        # The tenant's allowed private networks as the claim read them, before the http tools'
        # and the provider's policies were built from them (`_graph`): a change since restarts.
        self.networks = list(run.tenant_http_networks)
        self.graph: AgentGraph | None = None  # built by `_graph`
        # The provider credential's `updated_at` as `_graph` read it, before its key (None: none,
        # or the scripted provider): a change since restarts the attempt, its deletion fails the run.
        self.credential_stamp = None

    # --- the attempt --------------------------------------------------------------------------
    def advance(self) -> str:
        try:
            return self._advance()
        finally:
            # The model provider's HTTP client: its kept-alive connection closed with the attempt,
            # not whenever a full garbage collection gets to it (a worker held one per run it ran).
            close = getattr(self.graph.provider, "close", None) if self.graph is not None else None
            if close is not None:
                try:
                    close()
                except Exception:  # closing a connection the provider dropped: nothing to keep
                    logger.debug("run %s: closing its provider's client failed", self.run.pk, exc_info=True)

    def _advance(self) -> str:
        try:
            result = self._continue()
        except (LockLost, IntegrityError):
            # IntegrityError: a step of this index is recorded already — by the worker that took
            # the run over while this one was stalled past its lock (the step's unique key fences).
            logger.warning("run %s: lock lost; leaving the run to the worker that holds it", self.run.pk)
            return "lock_lost"
        except SettingsChanged as changed:
            # Back in the queue, its task sent again at once: the next attempt reads them anew.
            logger.info("run %s: %s; it goes on in a new attempt", self.run.pk, type(changed).__name__)
            self._requeue()
            return "restart"
        except TenantSuspended:
            # Back in the queue (not a lost worker): resuming the tenant hands it to a worker again.
            logger.info("run %s: tenant suspended; the run waits for it to be resumed", self.run.pk)
            self._requeue()
            return "suspended"
        except (ProviderError, ServiceError, RunStateError) as exc:
            result = RunResult(status="failed", reason=exc.code, message=exc.message)
        except ChildBusy:
            # A sub-agent's run is being advanced by another worker (a recovery): this run waits
            # in the queue, not counted as a lost worker, and its task tries again later.
            self._requeue()
            return "locked"
        except TRANSIENT:
            # The database or Redis is away: the task tries again later, from the checkpoint — as
            # a run put back in the queue, so the retry is not counted as a lost worker.
            with contextlib.suppress(*TRANSIENT):
                self._requeue()
            raise
        except SoftTimeLimitExceeded:
            # The worker's own time limit (an operator's `--soft-time-limit`), not a fault of the
            # run: back in the queue, sent again by the task, on from its checkpoint. The time the
            # cut-off step ran is kept: it counts against the run's time limit, which ends a run
            # whose step outlasts the worker's limit every time.
            spent = self.graph.step_under_way_ms() if self.graph is not None else 0.0
            _statement_abandoned()
            with contextlib.suppress(*TRANSIENT):
                self._requeue(interrupted_ms=spent)
            raise
        except Exception:  # a fault of ours or of a library: end the run clearly, never leave it running
            logger.exception("run %s failed on an unexpected error", self.run.pk)
            result = RunResult(
                status="failed", reason="internal_error", message="The run stopped on an internal error (logged)."
            )
        try:
            return self._conclude(result)
        except LockLost:
            # Found lost as the end was to be recorded: the run is the next holder's, as above (a
            # sub-agent's parent waits in the queue for it rather than taking the loss for its own).
            logger.warning("run %s: lock lost; leaving the run to the worker that holds it", self.run.pk)
            return "lock_lost"
        except (*TRANSIENT, SoftTimeLimitExceeded):
            # Recording the end met the same outage (or the time limit): back in the queue as
            # above, not a lost worker.
            _statement_abandoned()
            with contextlib.suppress(*TRANSIENT):
                self._requeue()
            raise

    def _requeue(self, *, interrupted_ms: float = 0.0) -> None:
        """Back in the queue, as it was before this attempt claimed it (unless another worker has
        claimed it since: the run is that worker's), with the running time of a step cut off."""
        Run.objects.filter(pk=self.run.pk, status=Run.Status.RUNNING, attempt=self.attempt).update(
            status=Run.Status.QUEUED, updated_at=timezone.now(), interrupted_ms=F("interrupted_ms") + interrupted_ms
        )

    def _graph(self) -> AgentGraph:
        run, manifest = self.run, self.manifest
        from apps.providers.services import provider_settings_for

        # The tools' and the provider's networks are the ones the claim read (`self.networks`), which
        # every later look compares with: a change since restarts the attempt (`_cancelled`). So is
        # the credential's stamp, read before the key: a change in between restarts it, at worst.
        self.credential_stamp = self._credential_stamp()
        provider = provider_create(
            run.provider, provider_settings_for(manifest, script=_script(run, manifest), networks=self.networks)
        )
        # Only `http` tools reach the network: an agent without them needs no policy (nor its lookup).
        http = any(tool.get("type") == "http" for tool in manifest["spec"].get("tools") or ())
        network = http_policy(self.networks) if http else NetworkPolicy()
        # An http tool calling this workspace's own API gets a read-only service token.
        credentials = own_workspace_headers(connection.schema_name, f"agent-{self.agent_name}") if http else None
        tools = ToolOptions(network=network, subagent=self._subagent, credentials=credentials)
        hooks = RunHooks(
            cancelled=self._cancelled,
            record=self._record,
            replay=self._replay,
            quota=self._quota,
            content=self._content,
        )
        # Checkpoints are written in the background while the next step runs ("async"): a step
        # is recorded (its Step row committed) before its node returns, and LangGraph makes the
        # checkpoint holding it only after that, so a checkpoint is never ahead of the steps
        # recorded. A lost worker may leave them behind by a few steps instead of one; recovery
        # replays every step recorded after the last checkpoint, however many. `invoke` returns
        # only once every write is done, so an interrupted or finished run is fully checkpointed
        # before `_conclude` records it.
        self.graph = AgentGraph(
            manifest,
            self.domain,
            provider=provider,
            checkpointer=checkpointer(
                connection.schema_name,
                fence=self._fence,
                claim=(run.pk, self.attempt),
                new_thread=None if self.started else str(run.pk),
            ),
            tools=tools,
            hooks=hooks,
            durability="async",
            trace_content=self.trace_content,
            interrupted_ms=run.interrupted_ms,
        )
        return self.graph

    def _continue(self) -> RunResult:
        run = self.run
        graph = self._graph()
        thread = str(run.pk)
        if not self.started:
            return graph.start(thread, run.input)
        state = graph.inspect(thread)
        if state.result is not None:
            return state.result
        approval = None
        if state.approval is not None:
            approval = run.approvals.filter(step=state.approval["step"]).first()
            if approval is None or approval.decision == Approval.Decision.PENDING:
                return self._waiting(state.approval)
        # Steps recorded after the last checkpoint (or before the first): done by a lost worker,
        # replayed rather than redone, whichever way the run goes on.
        self.recorded = {
            step.index: (step.record, step.replay)
            for step in run.steps.filter(index__gt=state.step_count).only("index", "record", "replay")
        }
        if approval is not None:
            if approval.tool == OVERAGE_TOOL and approval.decision == Approval.Decision.REJECTED:
                # A human refused to spend past the budgets: the run ends so, whether or not they
                # are still reached now (one deleted or raised meanwhile would let the model call
                # through on resume, the refusal unread).
                comment = f": {approval.comment}" if approval.comment else "."
                message = f"{' '.join(map(str, approval.reasons))} A human approver refused the overage{comment}"
                return RunResult(status="failed", reason="quota_exceeded", message=message)
            return self._decided(graph, thread, self._resume(graph, thread, approval))
        if not state.started:
            return graph.start(thread, run.input)
        return self._decided(graph, thread, graph.recover(thread))

    @staticmethod
    def _resume(graph: AgentGraph, thread: str, approval: Approval) -> RunResult:
        approved = approval.decision == Approval.Decision.APPROVED
        return graph.resume(thread, approved=approved, by=approval.approver, comment=approval.comment)

    def _decided(self, graph: AgentGraph, thread: str, result: RunResult) -> RunResult:
        """A run that asks for an approval decided already goes on with that decision, here.

        It asks again when a checkpoint database that crashed lost its interrupt: it ran the step
        again from the checkpoint before. The interrupt it just wrote is answered at once, rather
        than the run waiting for a decision no one can take again, or going back to the queue (a
        sub-agent's parent would take that for a failure). Asked again at the same step after that
        answer, the run fails (`approval_lost`) instead of asking for ever."""
        answered: set[int] = set()
        while result.status == "waiting_approval":
            step = result.approval["step"]
            approval = self.run.approvals.filter(step=step).exclude(decision=Approval.Decision.PENDING).first()
            if approval is None or _asked_anew(approval, result.approval):
                break
            if step in answered:
                return RunResult(status="failed", reason="approval_lost", message=_APPROVAL_LOST.format(step=step))
            answered.add(step)
            result = self._resume(graph, thread, approval)
        return result

    @staticmethod
    def _waiting(request: dict) -> RunResult:
        return RunResult(status="waiting_approval", approval=request)

    def _conclude(self, result: RunResult) -> str:
        run = self.run
        self._lock_check()
        if result.status != "waiting_approval":
            if result.status == Run.Status.CANCELLED:
                _children_stop(run.pk)
            refused = result.reason == "quota_exceeded"  # a spent budget refused the run a model call
            # That refusal is an event, committed with the run's end or not at all.
            with transaction.atomic() if refused else contextlib.nullcontext():
                ended = run_finish(
                    run,
                    result.status,
                    reason=result.reason or "",
                    message=storable(result.message or ""),
                    output=storable(result.output),
                    attempt=self.attempt,
                    approvals=self.was_waiting,
                )
                if ended and refused:
                    audit_record(
                        action="quota.exceeded",
                        actor="runs",
                        target=run,
                        data={"project": run.project, "message": run.message[:500]},
                        outcome=Outcome.DENIED,
                    )
            if not ended:  # someone else ended it meanwhile, or another worker claimed it since
                run.refresh_from_db(fields=["status", "attempt"])
                if run.attempt != self.attempt:
                    return "lock_lost"  # its end is that worker's
            return run.status
        with transaction.atomic():
            run = self.run = Run.objects.select_for_update().get(pk=run.pk)
            if run.attempt != self.attempt:
                return "lock_lost"  # claimed by another worker since: the run is that worker's
            if run.is_finished:
                return run.status
            # What the model asked for, as any step's record is: text no column takes replaced.
            request = storable(result.approval)
            approval, _ = Approval.objects.get_or_create(
                run=run,
                step=request["step"],
                defaults={
                    "tool": request["tool"],
                    "tool_call_id": request["tool_call_id"],
                    "arguments": request["arguments"],
                    "reasons": request["reasons"],
                    "caps": _caps(request),
                },
            )
            if approval.decision != Approval.Decision.PENDING and _asked_anew(approval, request):
                # The question is put to the approvers again, as it stands now; the first answer
                # stays in the audit trail (run.approve / run.reject).
                approval.reasons, approval.caps, approval.requested_at = (
                    request["reasons"],
                    _caps(request),
                    timezone.now(),
                )
                approval.decision, approval.approver, approval.comment = Approval.Decision.PENDING, "", ""
                approval.decided_at = None
                approval.save(
                    update_fields=["reasons", "caps", "requested_at", "decision", "approver", "comment", "decided_at"]
                )
            if run.cancel_requested_at is not None:
                run_finish(run, Run.Status.CANCELLED, reason="cancelled", message="The run was cancelled.")
            elif approval.decision != Approval.Decision.PENDING:
                # Decided already, and answered by `_decided` once: its state is not being kept.
                run_finish(
                    run, Run.Status.FAILED, reason="approval_lost", message=_APPROVAL_LOST.format(step=approval.step)
                )
            else:
                run.status = Run.Status.WAITING_APPROVAL
                run.updated_at = timezone.now()
                run.save(update_fields=["status", "updated_at"])
        return run.status

    # --- hooks the graph calls ----------------------------------------------------------------
    def _lock_check(self) -> None:
        """Stop once the lock is lost (as its renewer found, or by its expiry): LockLost, or a
        RedisError when Redis could not be reached to renew it — an outage, after which the run
        goes back to the queue for its task's retry (`advance`)."""
        if self.lock.lost:
            if self.lock.unreachable:
                raise RedisError("Redis could not be reached to renew the run's lock")
            raise LockLost()

    def _fence(self) -> None:
        """Before each checkpoint write: none once the lock is lost, so a worker stalled past it
        leaves no checkpoint newer than its successor's (the database fences it too: checkpoints.py)."""
        self._lock_check()

    def _cancelled(self) -> bool:
        self._lock_check()
        now = time.monotonic()
        if now - self.tenant_checked >= TENANT_CHECK_SECONDS:
            self.tenant_checked = now
            row = Tenant.objects.filter(schema_name=connection.schema_name).values_list(
                "status", "http_allowed_networks"
            )
            status, networks = row.first() or (Tenant.Status.ACTIVE, self.networks)
            if status != Tenant.Status.ACTIVE:
                raise TenantSuspended()
            if list(networks) != self.networks:
                raise NetworksChanged()
            self._credential_check(self._credential_stamp())  # should its signal have been lost
        if not self.cancel_requested and self.lock.check():
            # Looked at before every step (one Redis round trip beside the run's lock), and
            # signalled, the run's row read: a cancellation committed since the last step was
            # recorded, or since the run was picked up, stops the run before the next model call,
            # tool call or sub-agent, not after it. The same look is the fence: once another
            # worker holds the run's lock, this one stops (and the row's read, on `attempt`).
            # Should Redis not have taken the signal, the next step's record reads the row.
            # A provider credential changed or deleted signals its workspace's runs too.
            with connection.cursor() as cursor:
                cursor.execute(_SIGNALLED, [self.run.provider, self.run.pk])
                row = cursor.fetchone()
            if row is None or row[1] != self.attempt:
                raise LockLost()
            self._credential_check(row[2])
            self.cancel_requested = row[0]
        if self.lock.worker_stopping and not self.cancel_requested:
            raise WorkerStopping()
        return self.cancel_requested

    def _credential_stamp(self):
        """The `updated_at` of the workspace's credential for the run's provider (None: none)."""
        from apps.providers.models import ProviderCredential, ProviderName

        if self.run.provider not in ProviderName.values:
            return None  # scripted: no credential
        stamps = ProviderCredential.objects.filter(provider=self.run.provider).values_list("updated_at", flat=True)
        return stamps.first()

    def _credential_check(self, stamp) -> None:
        """Stop using a provider credential deleted or replaced since `_graph` read it."""
        if stamp == self.credential_stamp:
            return
        if stamp is None:
            name = self.run.provider
            message = f"The workspace's {name} credentials were deleted while the run was under way."
            raise ServiceError("provider_not_configured", message, status=409)
        raise ProviderChanged()

    def _content(self) -> bool:
        """Whether the workspace still lets traces carry prompts and completions, read as a model
        call's answer is about to go on its span (only while it did): turned off since, that span
        and every later one of the run go without them (docs/observability.md)."""
        allowed = Tenant.objects.filter(pk=self.tenant_id, trace_content=True).exists()
        if not allowed:
            self.trace_content = self.graph.trace_content = False
        return allowed

    def _replay(self, index: int) -> tuple[dict, dict] | None:
        return self.recorded.get(index)

    def _record(self, step: dict, payload: dict) -> None:
        self._lock_check()
        step, payload = storable(step), storable(payload)
        run = self.run
        now = timezone.now()
        tokens = [step.get("input_tokens", 0), step.get("output_tokens", 0), step.get("cached_tokens", 0)]
        usage = None
        usage_sql, usage_params = "", []
        if step["node"] == "model":
            usage = UsageRecord(
                tenant_id=self.tenant_id,
                project=run.project,
                agent=self.agent_name,
                run_id=run.pk,
                step=step["index"],
                provider=step.get("provider") or run.provider,
                model=step.get("model") or run.model,
                input_tokens=tokens[0],
                output_tokens=tokens[1],
                cached_tokens=tokens[2],
                cache_write_tokens=step.get("cache_write_tokens", 0),
                latency_ms=step.get("duration_ms", 0.0),
                created_at=now,
            )
            usage_sql, usage_params = usage_ctes(usage, only_with="run")
        json_value = connection.ops.adapt_json_value
        arguments = step.get("arguments")
        params = [
            step["index"],
            *tokens,
            now,
            run.pk,
            self.attempt,
            *usage_params,
            run.pk,
            step["index"],
            step["node"],
            (step.get("tool") or "")[:63],  # the name a model chose: any length
            None if arguments is None else json_value(arguments, None),
            step.get("status") or "ok",
            step.get("error") or "",
            step.get("summary") or "",
            step.get("provider") or "",
            step.get("model") or "",
            *tokens,
            step.get("duration_ms", 0.0),
            json_value(step, None),
            json_value(payload, None),
            now,
        ]
        sql = _RECORD.format(
            usage=f"{usage_sql}, " if usage else "", usage_result=USAGE_RESULT if usage else "NULL, NULL, NULL"
        )
        # One statement, atomic by itself; inside a caller's transaction (a sub-agent's parent, a
        # test) a savepoint keeps a refused step from aborting that transaction.
        if usage is not None:
            guard = usage_guard(usage)
        else:
            guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
        with guard, connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:  # claimed by another worker since: it recorded nothing, and stops here
            raise LockLost()
        self.cancel_requested, *usage_result = row
        if usage is not None and usage_written(usage, *usage_result) is not None:
            self.month_totals = usage.month_totals

    def _quota(self, approved: list[str] | bool) -> dict | None:
        reached = quota_check(
            tenant_id=self.tenant_id, project=self.run.project, approved=approved, totals=self.month_totals
        )
        if not reached:
            return None
        if not reached[0].approvable:  # first when there is one: no approval would help
            return {"message": reached[0].message, "approvable": False}
        return {"message": reached[0].message, "approvable": True, "reasons": [use.message for use in reached],
                "caps": [use.key for use in reached]}  # fmt: skip

    def _depth(self) -> int:
        """How deep this run sits among sub-agents (0: started by a person or a client), from its
        stored parents, so a child its own task resumes (after an approval, a lost worker) counts
        as deep as it is. Walks up at most one past the limit."""
        depth, parent = 0, self.run.parent_id
        while parent is not None and depth <= settings.FOUNDRY_SUBAGENT_MAX_DEPTH:
            depth += 1
            parent = Run.objects.filter(pk=parent).values_list("parent_id", flat=True).first()
        return depth

    def _subagent(self, name: str, text: str, seconds_left: float, key: str | None) -> str:
        """Run another deployed agent of this tenant as a child run, here in this worker."""
        if self._depth() + 1 > settings.FOUNDRY_SUBAGENT_MAX_DEPTH:
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
            # Under the parent's row lock, as run_cancel takes it before it cancels the children: a
            # cancellation committed before this finds the parent cancelled and starts no child; one
            # after it waits for the child's row, and cancels it too.
            with transaction.atomic():
                parent = Run.objects.select_for_update().filter(pk=run.pk).values_list("cancel_requested_at").first()
                if parent is None or parent[0] is not None:
                    self.cancel_requested = True
                    raise ToolError("run_cancelled", "This run was cancelled: no sub-agent was started.")
                try:
                    child = run_create(
                        agent=agent, input=text, created_by=f"run {run.pk}", parent=run, parent_step=index
                    )
                except ServiceError as exc:
                    raise ToolError(exc.code, exc.message) from None
        # The child runs under its own manifest's limits (docs/runs.md); this run's own time limit
        # is checked before its next step, so `seconds_left` bounds nothing here.
        if not child.is_finished:
            outcome = run_advance(child.pk)
            # What the child spent counts for this run's next model call: the month read afresh.
            self.month_totals = None
            if outcome in ("locked", "lock_lost"):
                raise ChildBusy(str(child.pk))  # its step is recorded once the child is done
            if outcome == "suspended":
                raise TenantSuspended()  # the child waits in the queue, and so does this run
            if outcome == "restart":
                raise SettingsChanged()  # this run's next attempt, at once, takes the child up again
            child.refresh_from_db()
            if child.status in (Run.Status.QUEUED, Run.Status.RUNNING):
                # Moved on since its attempt here ended: an approval decided it, another worker
                # claimed it. Not a failure: this run waits in the queue for the child's answer.
                raise ChildBusy(str(child.pk))
        if child.status == Run.Status.SUCCEEDED:
            return child.output or ""
        if child.status == Run.Status.WAITING_APPROVAL:
            raise ToolError(
                "subagent_waiting_approval",
                f"The sub-agent's run {child.pk} waits for a human approval; it goes on once decided.",
            )
        # Its own end, whatever time it took: the reason it failed, not a guess at one.
        reason = f" ({child.reason})" if child.reason else ""
        raise ToolError("subagent_failed", f"The sub-agent's run {child.pk} {child.status}{reason}: {child.message}")
