"""Retention: how long a workspace keeps each kind of its data, and the pass that applies it.

The policy is one row in the workspace's schema (RetentionPolicy, pk 1), changed only through
`retention_policy_set`, which judges every value and audits the change. `retention_apply` is the
nightly pass (tasks.py; `manage.py apply_retention`): for each kind whose setting is not None it
deletes what is older than the setting allows, in batches of about `batch_size` rows, each batch
its own short transaction, so no lock is held for long, and a pass cut short leaves nothing that
the next pass does not finish. With `dry_run` it only counts. Either way the pass records one
`retention.applied` audit event with its counts. docs/retention.md has the rules per kind.
"""

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context
from redis.exceptions import LockError, RedisError

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.models import Outcome
from apps.audit.services import audit_record
from apps.billing.rls import usage_scope
from apps.billing.rollups import day_bounds, rollup_days
from apps.lifecycle.erasing import erasing
from apps.lifecycle.exports import exports_delete
from apps.lifecycle.models import Export, RetentionPolicy
from apps.runs.checkpoints import TenantSaver, checkpointer
from apps.runs.models import Run
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list
from foundry.errors import ServiceError

DAYS_FIELDS = ("runs_days", "checkpoints_days", "usage_detail_days", "traces_days", "exports_days", "audit_days")
FIELDS = (*DAYS_FIELDS, "audit_legal_hold")
MAX_DAYS = 36500  # a hundred years; longer is "for ever" (None)
KINDS = ("runs", "checkpoints", "usage_detail", "traces", "exports", "audit")
BATCH_SIZE = 500
FINISHED = sorted(Run.FINISHED)


# --- the policy ---------------------------------------------------------------------------------


def retention_policy_get() -> RetentionPolicy:
    """The workspace's policy (the connection's schema); created with its defaults if missing."""
    policy, _ = RetentionPolicy.objects.get_or_create(pk=1)
    return policy


def retention_policy_dict(policy: RetentionPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in FIELDS}


def _days(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name}: a whole number of days, or null to keep for ever.", code="days_invalid")
    if value < 1:
        raise ValidationError(f"{name}: at least 1 day, or null to keep for ever.", code="days_invalid")
    if value > MAX_DAYS:
        raise ValidationError(f"{name}: at most {MAX_DAYS} days; null keeps for ever.", code="days_too_large")
    return value


def retention_policy_clean(values: dict[str, Any]) -> dict[str, Any]:
    """`values` judged, every error at once (a ValidationError by field, each with a stable code)."""
    errors: dict[str, ValidationError] = {}
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name not in FIELDS:
            errors[str(name)[:60]] = ValidationError(
                f"Not a retention setting; the settings are {', '.join(FIELDS)}.", code="field_unknown"
            )
        elif name == "audit_legal_hold":
            if isinstance(value, bool):
                cleaned[name] = value
            else:
                errors[name] = ValidationError("audit_legal_hold: true or false.", code="legal_hold_invalid")
        else:
            try:
                cleaned[name] = _days(name, value)
            except ValidationError as exc:
                errors[name] = exc
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def retention_policy_set(*, actor, request=None, **values) -> RetentionPolicy:
    """Change the settings given (the others stay), audited with what changed in the same
    transaction. Nothing is written when any value is refused."""
    cleaned = retention_policy_clean(values)
    retention_policy_get()  # the row exists
    policy = RetentionPolicy.objects.select_for_update().get(pk=1)
    actor = allowed_now(actor, Permission.SETTINGS_MANAGE)  # as they stand now, not as the request began
    changes = {name: [getattr(policy, name), new] for name, new in cleaned.items() if getattr(policy, name) != new}
    if not changes:
        return policy
    # A legal hold keeps evidence: admins may put one on, only owners lift it (docs/retention.md).
    lifting = changes.get("audit_legal_hold") == [True, False]
    if lifting and not isinstance(actor, str) and not actor.has_permission(Permission.OWNERS_MANAGE):
        raise PermissionDenied(f"Only owners lift a legal hold; your role does not allow {Permission.OWNERS_MANAGE}.")
    for name, (_, new) in changes.items():
        setattr(policy, name, new)
    policy.updated_at = timezone.now()
    policy.updated_by = str(actor)[:255]
    policy.save(update_fields=[*changes, "updated_at", "updated_by"])
    audit_record(action="retention.updated", actor=actor, target=policy, data={"changes": changes}, request=request)
    return policy


def legal_hold_refuse(what: str, *, workspace: str = "This workspace") -> None:
    """Refuse `what` (a deletion, an erasure) with 409 `legal_hold` while the workspace the
    connection is on (named `workspace` in the message) keeps its audit trail on legal hold.
    Inside a transaction the policy's row is locked until it ends: a hold put on meanwhile waits
    for it (retention_policy_set locks it)."""
    policy = RetentionPolicy.objects.filter(pk=1, audit_legal_hold=True)
    if connection.in_atomic_block:
        policy = policy.select_for_update()
    if policy.exists():
        raise ServiceError(
            "legal_hold",
            f"{workspace}'s audit trail is on legal hold; its owners lift the hold (Settings → Data"
            f" retention) before {what}.",
            status=409,
        )


def retention_tenants() -> QuerySet[Tenant]:
    """The tenants the nightly pass visits: the active ones (a suspended tenant's data waits)."""
    return tenant_list().filter(status=Tenant.Status.ACTIVE).order_by("pk")


# --- the pass -----------------------------------------------------------------------------------


RETENTION_LOCK_SECONDS = 6 * 3600  # a pass still going after this may be joined by the next


def retention_lock_key(schema: str) -> str:
    return f"foundry:retention:{schema}"


@contextmanager
def _one_pass_at_a_time(tenant: Tenant, *, dry_run: bool) -> Iterator[None]:
    """One deleting pass over a workspace at a time (the beat job, a command, a redelivered task):
    another is refused with `retention_busy` at once. A dry run deletes nothing and never waits.
    A Redis lock with an expiry, not a database one: a pass commits batch by batch, and a pass
    failing inside a caller's transaction must neither keep the lock nor hide its error."""
    if dry_run:
        yield
        return
    lock = get_redis_connection("default").lock(
        retention_lock_key(tenant.schema_name), timeout=RETENTION_LOCK_SECONDS, thread_local=False
    )
    try:
        acquired = lock.acquire(blocking=False)
    except RedisError:
        acquired = None  # Redis away: the pass goes on alone (it counts only what its deletes remove)
    if acquired is False:
        raise ServiceError(
            "retention_busy", "A retention pass of this workspace is running; it will finish the work.", status=409
        )
    try:
        yield
    finally:
        if acquired:
            with contextlib.suppress(LockError, RedisError):
                lock.release()


def retention_apply(
    *,
    tenant: Tenant,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    actor: Any = "retention",
    request=None,
) -> dict[str, int]:
    """Apply `tenant`'s policy as of `now`: how many of each kind went (or, with `dry_run`,
    would go). Records one `retention.applied` audit event."""
    if batch_size < 1:
        raise ValueError("batch_size is at least 1")
    now = now or timezone.now()
    with tenant_context(tenant), _one_pass_at_a_time(tenant, dry_run=dry_run):
        policy = retention_policy_get()
        sweep = _Sweep(tenant, now=now, dry_run=dry_run, batch_size=batch_size)
        counts = dict.fromkeys(KINDS, 0)
        skipped: list[str] = []
        days = {
            "runs": policy.runs_days,
            "checkpoints": policy.checkpoints_days,
            "usage_detail": policy.usage_detail_days,
            "traces": policy.traces_days,
            "exports": policy.exports_days,
            "audit": None if policy.audit_legal_hold else policy.audit_days,
        }
        kind = None
        try:
            for kind in KINDS:
                if days[kind] is None:
                    continue
                went = getattr(sweep, kind)(now - timedelta(days=days[kind]))
                if went is None:  # audit: no signed checkpoint to prune up to
                    skipped.append(kind)
                else:
                    counts[kind] = went
        except Exception as exc:
            # Each batch commits on its own: what went before the failure is gone, and recorded
            # (the failing kind's own batches are not counted). Then the failure goes on up.
            failure = {"failed": kind, "error": type(exc).__name__}
            with contextlib.suppress(DatabaseError):
                _applied(policy, counts, skipped, now=now, dry_run=dry_run, actor=actor, request=request, **failure)
            raise
        _applied(policy, counts, skipped, now=now, dry_run=dry_run, actor=actor, request=request)
    return counts


def _applied(policy, counts: dict, skipped: list, *, now: datetime, dry_run: bool, actor, request, **failure) -> None:
    """The pass's `retention.applied` event; given `failure` (the kind it stopped at, the error's
    class), with the outcome failure and the counts of the kinds done before."""
    with transaction.atomic():
        audit_record(
            action="retention.applied",
            actor=actor,
            target=policy,
            data={
                "counts": counts,
                "dry_run": dry_run,
                "as_of": now.astimezone(UTC).isoformat(),
                "policy": retention_policy_dict(policy),
                **({"skipped": skipped} if skipped else {}),
                **failure,
            },
            outcome=Outcome.FAILURE if failure else Outcome.SUCCESS,
            request=request,
        )


class _Sweep:
    """One pass over one workspace (the connection is in its schema), kind by kind."""

    def __init__(self, tenant: Tenant, *, now: datetime, dry_run: bool, batch_size: int):
        self.tenant = tenant
        self.now = now
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.saver = RetentionSaver.of(tenant.schema_name)
        # The runs a dry run would have deleted: the kinds after it skip them, as a real pass would.
        self.doomed: set = set()

    def _cutoff(self, kind: str, before: datetime | None) -> datetime | None:
        """`before`, or later the policy as it is now (re-read before each batch): a longer period
        saved while the pass runs applies from the next batch; None once the kind is kept for ever."""
        days = RetentionPolicy.objects.values_list(f"{kind}_days", flat=True).get(pk=1)
        if before is None or days is None:
            return None
        return min(before, self.now - timedelta(days=days))

    # --- runs -----------------------------------------------------------------------------------
    def runs(self, before: datetime) -> int:
        deleted = 0
        for group in self._run_groups(before):
            ids = [run_id for tree in group for run_id in tree]
            if self.dry_run:
                self.doomed.update(ids)
            else:
                # Checkpoints first: a run left without them (a pass cut short) is finished, and
                # goes next time; checkpoints left without their run would never go.
                for run_id in ids:
                    self.saver.thread_delete(str(run_id), batch_size=self.batch_size)
                with erasing(), connection.cursor() as cursor:
                    cursor.execute(_RUNS_DELETE, [ids, ids, ids])
                    deleted += cursor.rowcount  # what went, not what was chosen
                continue
            deleted += len(ids)
        return deleted

    def _run_groups(self, before: datetime) -> Iterator[list[list]]:
        """Trees of runs that may go, each a list of run ids, grouped so that a group holds about
        `batch_size` rows with its steps (one transaction each)."""
        after = None
        while (before := self._cutoff("runs", before)) is not None:
            with connection.cursor() as cursor:
                cursor.execute(_ROOTS, [FINISHED, before, after, after, self.batch_size])
                roots = [row[0] for row in cursor.fetchall()]
                if not roots:
                    return
                after = roots[-1]
                cursor.execute(_TREES, [roots, FINISHED, before])
                trees: dict = {}
                for run_id, root, finished, steps in cursor.fetchall():
                    trees.setdefault(root, []).append((run_id, finished, steps))
            group: list[list] = []
            weight = 0
            for root in roots:
                tree = trees.get(root, [])
                if not all(finished for _, finished, _ in tree):
                    continue  # a run of it is still going, or ended within the period: the whole tree stays
                group.append([run_id for run_id, _, _ in tree])
                weight += sum(1 + steps for _, _, steps in tree)
                if weight >= self.batch_size:
                    yield group
                    group, weight = [], 0
            if group:
                yield group

    def _finished_runs(self, kind: str, before: datetime, runs: QuerySet) -> Iterator[list]:
        """Ids of `runs` that finished before `before` (or `kind`'s period as it is now), in batches (by id)."""
        runs = runs.filter(status__in=FINISHED).order_by("pk")
        after = None
        while (before := self._cutoff(kind, before)) is not None:
            page = runs.filter(finished_at__lt=before)
            page = page.filter(pk__gt=after) if after is not None else page
            ids = list(page.values_list("pk", flat=True)[: self.batch_size])
            if not ids:
                return
            after = ids[-1]
            ids = [run_id for run_id in ids if run_id not in self.doomed]
            if ids:
                yield ids

    # --- checkpoints ----------------------------------------------------------------------------
    def checkpoints(self, before: datetime) -> int:
        """Cut the checkpoints of runs that finished before `before` to their final state: those
        that finished since the last pass that completed (`checkpoints_pruned_before`), which then
        moves up to this pass's cutoff — a finished run's checkpoints never change again."""
        done = RetentionPolicy.objects.values_list("checkpoints_pruned_before", flat=True).get(pk=1)
        runs = Run.objects.filter(finished_at__gte=done) if done is not None else Run.objects.all()
        pruned = 0
        for ids in self._finished_runs("checkpoints", before, runs):
            for thread_id, count in self.saver.threads_with_history([str(run_id) for run_id in ids]).items():
                if self.dry_run:
                    pruned += count - 1
                else:
                    pruned += self.saver.thread_prune(thread_id, batch_size=self.batch_size)
        cutoff = self._cutoff("checkpoints", before)
        if not self.dry_run and cutoff is not None and (done is None or cutoff > done):
            # Not a change anyone made (no history entry): where the next pass starts.
            RetentionPolicy.objects.filter(pk=1).update(checkpoints_pruned_before=cutoff)
        return pruned

    # --- traces ---------------------------------------------------------------------------------
    def traces(self, before: datetime) -> int:
        if self.dry_run:
            return sum(len(ids) for ids in self._finished_runs("traces", before, Run.objects.exclude(trace_id="")))
        cleared = 0
        while (before := self._cutoff("traces", before)) is not None:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_TRACES_CLEAR, [FINISHED, before, self.batch_size])
                cleared += cursor.rowcount
                if cursor.rowcount < self.batch_size:
                    break
        return cleared

    # --- usage detail ---------------------------------------------------------------------------
    def usage_detail(self, before: datetime) -> int:
        # Days the hourly roll-up still recomputes keep their detail whatever the policy says:
        # rolling up a day with rows gone would undercount it.
        open_from, _ = day_bounds(rollup_days(self.now)[0])
        # Whole UTC days only: the day the cut-off falls in keeps all of its rows until a later
        # pass (a day half gone would be counted from its roll-up; see usage_summary).
        before = min(day_bounds(before.astimezone(UTC).date())[0], open_from)
        tenant_id = self.tenant.pk
        with usage_scope(tenant_id), connection.cursor() as cursor:
            cursor.execute(_ROLLED_UP_DAYS, [tenant_id, before, tenant_id])
            days = [row[0] for row in cursor.fetchall()]
            if not days:
                return 0
            if self.dry_run:
                cursor.execute(_USAGE_COUNT, [tenant_id, before, days])
                return cursor.fetchone()[0]
        deleted = 0
        while (later := self._cutoff("usage_detail", before)) is not None:
            before = min(before, day_bounds(later.astimezone(UTC).date())[0])  # whole days, as above
            with erasing(), usage_scope(tenant_id), connection.cursor() as cursor:
                cursor.execute(_USAGE_DELETE, [tenant_id, before, days, self.batch_size])
                deleted += cursor.rowcount
                if cursor.rowcount < self.batch_size:
                    break
        return deleted

    # --- exports --------------------------------------------------------------------------------
    def exports(self, before: datetime) -> int:
        if self.dry_run:
            return Export.objects.filter(created_at__lt=before).count()
        deleted = 0
        while (before := self._cutoff("exports", before)) is not None:
            batch = Export.objects.filter(created_at__lt=before).order_by("pk").values_list("pk", flat=True)
            batch = list(batch[: self.batch_size])
            if not batch:
                break
            deleted += exports_delete(Export.objects.filter(pk__in=batch), batch_size=self.batch_size)
        return deleted

    # --- audit ----------------------------------------------------------------------------------
    def audit(self, before: datetime) -> int | None:
        """Events pruned (None: the audit app cannot prune). A dry run prunes in a transaction it
        rolls back: only the audit app knows which stretch of the chain it may cut."""
        try:
            from apps.audit.services import audit_prune
        except ImportError:
            return None
        with transaction.atomic():
            # The policy as it is now, locked to the prune's end: a legal hold (or a longer
            # period) saved while the earlier kinds were swept applies, and one saved meanwhile
            # waits for the prune (retention_policy_set locks the same row).
            policy = RetentionPolicy.objects.select_for_update().get(pk=1)
            if policy.audit_legal_hold or policy.audit_days is None:
                return 0
            before = min(before, self.now - timedelta(days=policy.audit_days))
            pruned = audit_prune(tenant_id=self.tenant.pk, before=before)
            if self.dry_run:
                transaction.set_rollback(True)
        return pruned


# Finished top-level runs ended before a moment (a sub-agent's run goes with its parent's).
_ROOTS = """
SELECT id FROM runs_run
 WHERE parent_id IS NULL AND status = ANY(%s) AND finished_at < %s AND (%s::uuid IS NULL OR id > %s)
 ORDER BY id LIMIT %s
"""

# Every run of those trees: (id, root, finished before the cut-off, steps). A sub-agent's run may
# end long after its parent (it waited for an approval): the tree goes once its last run is old.
_TREES = """
WITH RECURSIVE tree AS (
    SELECT id, id AS root FROM runs_run WHERE id = ANY(%s)
    UNION ALL
    SELECT child.id, tree.root FROM runs_run child JOIN tree ON child.parent_id = tree.id
)
SELECT tree.id, tree.root, run.status = ANY(%s) AND run.finished_at < %s, run.step_count
  FROM tree JOIN runs_run run ON run.id = tree.id
"""

# One statement: the foreign keys are checked after all of it (at commit: they are deferred).
# The approvals go with their model history (which holds the approver and the comment): these
# statements fire no signals, so django-auditlog would keep it for ever.
_RUNS_DELETE = """
WITH approvals AS (DELETE FROM runs_approval WHERE run_id = ANY(%s) RETURNING id::text AS pk),
     history AS (DELETE FROM auditlog_logentry
                  WHERE content_type_id = (SELECT id FROM django_content_type
                                            WHERE app_label = 'runs' AND model = 'approval')
                    AND object_pk IN (SELECT pk FROM approvals)),
     steps AS (DELETE FROM runs_step WHERE run_id = ANY(%s))
DELETE FROM runs_run WHERE id = ANY(%s)
"""

_TRACES_CLEAR = """
UPDATE runs_run SET trace_id = '' WHERE id IN (
    SELECT id FROM runs_run WHERE status = ANY(%s) AND finished_at < %s AND trace_id <> '' LIMIT %s)
"""

# The days (UTC) before a moment whose every ledger group is counted in UsageDay. The roll-up of
# a closed day counts all of it, and the ledger only grows, so a group whose roll-up counts at
# least the calls and tokens the ledger holds is rolled up (more: a pass cut short took some).
_ROLLED_UP_DAYS = """
SELECT u.day FROM (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, project, agent, provider, model,
           count(*) AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
      FROM public.billing_usage WHERE tenant_id = %s AND created_at < %s
     GROUP BY 1, 2, 3, 4, 5
) u
LEFT JOIN public.billing_usage_day d
  ON d.tenant_id = %s AND d.day = u.day AND d.project = u.project AND d.agent = u.agent
 AND d.provider = u.provider AND d.model = u.model
GROUP BY u.day
HAVING bool_and(d.calls IS NOT NULL AND d.calls >= u.calls AND d.input_tokens >= u.input_tokens
                AND d.output_tokens >= u.output_tokens)
ORDER BY u.day
"""

_USAGE_COUNT = """
SELECT count(*) FROM public.billing_usage
 WHERE tenant_id = %s AND created_at < %s AND (created_at AT TIME ZONE 'UTC')::date = ANY(%s::date[])
"""

_USAGE_DELETE = """
DELETE FROM public.billing_usage WHERE id IN (
    SELECT id FROM public.billing_usage
     WHERE tenant_id = %s AND created_at < %s AND (created_at AT TIME ZONE 'UTC')::date = ANY(%s::date[]) LIMIT %s)
"""


# --- checkpoints ----------------------------------------------------------------------------------


class RetentionSaver(TenantSaver):
    """The tenant's checkpoint saver (apps/runs/checkpoints.py: its connection, lock and schema
    confinement) with the deletes retention needs, each batch one saver call (one transaction).

    Only a thread's root namespace is handled: an agent's graph has no subgraphs."""

    @classmethod
    def of(cls, schema: str) -> "RetentionSaver":
        shared = checkpointer(schema)
        return cls(shared.conn, schema, lock=shared.lock)

    def threads_with_history(self, thread_ids: list[str]) -> dict[str, int]:
        """Of `thread_ids`, those with more than one checkpoint, or with blobs none names, with
        how many checkpoints they have."""
        with self._cursor() as cur:
            cur.execute(_THREADS_WITH_HISTORY, (thread_ids,))
            return {row["thread_id"]: row["n"] for row in cur.fetchall()}

    def thread_delete(self, thread_id: str, *, batch_size: int) -> int:
        """Every checkpoint, write and blob of the thread; the number of checkpoints deleted."""
        self._delete(_WRITES_DELETE, (thread_id, batch_size), batch_size)
        deleted = self._delete(_CHECKPOINTS_DELETE, (thread_id, batch_size), batch_size)
        self._delete(_BLOBS_DELETE, (thread_id, batch_size), batch_size)
        return deleted

    def thread_prune(self, thread_id: str, *, batch_size: int) -> int:
        """Cut the thread to its latest checkpoint, first made whole (a snapshot of its delta
        channels) and checked to read the same; the number of checkpoints deleted (0: the check
        failed, and nothing was deleted)."""
        head = self._final_snapshot(thread_id)
        if head is None:
            return 0
        with self._cursor() as cur:
            cur.execute(_HEAD_DETACH, (thread_id, head))
        self._delete(_UNKEPT_WRITES_DELETE, (thread_id, head, batch_size), batch_size)
        deleted = self._delete(_UNKEPT_CHECKPOINTS_DELETE, (thread_id, head, batch_size), batch_size)
        self._delete(_UNREFERENCED_BLOBS_DELETE, (thread_id, batch_size), batch_size)
        return deleted

    def _delete(self, statement: str, params: tuple, batch_size: int) -> int:
        """Run a `WITH deleted AS (DELETE ... LIMIT batch) SELECT count(*)` until it deletes fewer
        than a batch (a pipeline's rowcount is not known before its results are read)."""
        total = 0
        while True:
            with self._cursor() as cur:
                cur.execute(statement, params)
                count = cur.fetchone()["n"]
            total += count
            if count < batch_size:
                return total

    def _final_snapshot(self, thread_id: str) -> str | None:
        """Give the thread's latest checkpoint a snapshot of each delta channel it would rebuild
        from older checkpoints; its id, or None if it would then read differently."""
        # Here, not at the top: every web process imports this module, few compact a thread.
        from langgraph.channels.delta import DeltaChannel
        from langgraph.checkpoint.serde.types import _DeltaSnapshot

        from foundry.runtime.graph import AgentState, agent_graph_compiled

        latest = self.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        if latest is None:
            return None
        head = latest.config["configurable"]["checkpoint_id"]
        graph = agent_graph_compiled(AgentState).copy(update={"checkpointer": self})  # the graph every run uses
        stored = latest.checkpoint["channel_values"]
        versions = latest.checkpoint["channel_versions"]
        delta = [
            name
            for name, channel in graph.channels.items()
            if isinstance(channel, DeltaChannel) and name in versions and name not in stored
        ]
        if not delta:
            return head
        before = graph.get_state(latest.config).values
        delta = [name for name in delta if name in before]
        checkpoint = {**latest.checkpoint, "channel_values": dict(stored)}
        for name in delta:
            checkpoint["channel_values"][name] = _DeltaSnapshot(before[name])
        metadata = dict(latest.metadata)
        counters = metadata.pop("counters_since_delta_snapshot", None) or {}
        counters = {name: value for name, value in counters.items() if name not in delta}
        if counters:
            metadata["counters_since_delta_snapshot"] = counters
        parent = latest.parent_config["configurable"]["checkpoint_id"] if latest.parent_config else None
        self.put(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": parent}},
            checkpoint,
            metadata,
            {name: versions[name] for name in delta},
        )
        after = graph.get_state(latest.config).values
        return head if after == before else None


# Also a thread cut to its final checkpoint by a pass cut short before its blobs went: the next
# pass finishes it (a blob no checkpoint names, the run's input among them, stayed for good).
_THREADS_WITH_HISTORY = """
SELECT c.thread_id, count(*) AS n FROM checkpoints c
 WHERE c.thread_id = ANY(%s) AND c.checkpoint_ns = '' GROUP BY c.thread_id
HAVING count(*) > 1 OR EXISTS (
    SELECT 1 FROM checkpoint_blobs b
     WHERE b.thread_id = c.thread_id AND b.checkpoint_ns = '' AND NOT EXISTS (
        SELECT 1 FROM checkpoints k
         WHERE k.thread_id = b.thread_id AND k.checkpoint_ns = b.checkpoint_ns
           AND k.checkpoint -> 'channel_versions' ->> b.channel = b.version))
"""

_WRITES_DELETE = """
WITH deleted AS (
    DELETE FROM checkpoint_writes WHERE (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) IN (
        SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx FROM checkpoint_writes
         WHERE thread_id = %s LIMIT %s)
    RETURNING 1
)
SELECT count(*) AS n FROM deleted
"""
_CHECKPOINTS_DELETE = """
WITH deleted AS (
    DELETE FROM checkpoints WHERE (thread_id, checkpoint_ns, checkpoint_id) IN (
        SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = %s LIMIT %s)
    RETURNING 1
)
SELECT count(*) AS n FROM deleted
"""
_BLOBS_DELETE = """
WITH deleted AS (
    DELETE FROM checkpoint_blobs WHERE (thread_id, checkpoint_ns, channel, version) IN (
        SELECT thread_id, checkpoint_ns, channel, version FROM checkpoint_blobs WHERE thread_id = %s LIMIT %s)
    RETURNING 1
)
SELECT count(*) AS n FROM deleted
"""

# The kept checkpoint's ancestors are about to go: it becomes the thread's first.
_HEAD_DETACH = """
UPDATE checkpoints SET parent_checkpoint_id = NULL
 WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s
"""
_UNKEPT_WRITES_DELETE = """
WITH deleted AS (
    DELETE FROM checkpoint_writes WHERE (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) IN (
        SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx FROM checkpoint_writes
         WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id <> %s LIMIT %s)
    RETURNING 1
)
SELECT count(*) AS n FROM deleted
"""
_UNKEPT_CHECKPOINTS_DELETE = """
WITH deleted AS (
    DELETE FROM checkpoints WHERE (thread_id, checkpoint_ns, checkpoint_id) IN (
        SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints
         WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id <> %s LIMIT %s)
    RETURNING 1
)
SELECT count(*) AS n FROM deleted
"""
# Blobs of channel versions the kept checkpoint does not name.
_UNREFERENCED_BLOBS_DELETE = """
WITH deleted AS (
    DELETE FROM checkpoint_blobs WHERE (thread_id, checkpoint_ns, channel, version) IN (
        SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version FROM checkpoint_blobs b
         WHERE b.thread_id = %s AND b.checkpoint_ns = '' AND NOT EXISTS (
            SELECT 1 FROM checkpoints c
             WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
               AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)
         LIMIT %s)
    RETURNING 1
)
SELECT count(*) AS n FROM deleted
"""
