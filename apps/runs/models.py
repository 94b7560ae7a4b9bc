"""Runs of deployed agents, their steps and approvals, and the usage ledger of model calls.

A run keeps the exact manifest and DIS versions it started with. Steps are written once, by the
worker, as each step completes (keyed by their index; UPDATE is refused by a trigger, see
migrations/0002), and usage records are append-only. The LangGraph checkpoint tables live in
the same tenant schema but are not Django models (migrations/0003).
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("catalog.Document", on_delete=models.PROTECT, related_name="runs")
    deployment = models.ForeignKey("catalog.Deployment", on_delete=models.PROTECT, related_name="runs")
    # Pinned at start: a newer deployment does not change a run under way.
    version = models.ForeignKey("catalog.Version", on_delete=models.PROTECT, related_name="runs")
    domain_version = models.ForeignKey("catalog.Version", on_delete=models.PROTECT, related_name="+")
    project = models.CharField(max_length=63)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Why a run did not succeed: a stable code (max_steps, timeout, cancelled, …) and a plain message.
    reason = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    input = models.TextField()
    output = models.TextField(null=True, blank=True)  # noqa: DJ001 — None: no answer (not an empty one)
    # The scripted provider's steps for this run (None: the manifest test with the same input, if any).
    script = models.JSONField(null=True, blank=True)
    created_by = models.CharField(max_length=255)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    parent_step = models.PositiveIntegerField(null=True, blank=True)
    step_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    # Times a worker took the run over from a worker that was lost while running it.
    recoveries = models.PositiveSmallIntegerField(default=0)
    # Times a worker has claimed the run; what a worker writes for the run is fenced by the
    # number its claim set (engine.py): once another worker claims the run, its writes stop.
    # db_default (as trace_id's): an archive made before the column imports with it (docs/export.md).
    attempt = models.PositiveIntegerField(default=0, db_default=0)
    # Milliseconds spent in steps a worker's soft time limit cut off, which were never recorded:
    # counted against the run's time limit with the recorded steps' (engine.py), or a step longer
    # than that limit would be tried again for ever, the run's clock starting again each time.
    interrupted_ms = models.FloatField(default=0.0, db_default=0.0)
    # The OpenTelemetry trace of the request (or task) that started the run: 32 lowercase hex, or
    # empty when none was being recorded.
    trace_id = models.CharField(max_length=32, blank=True, default="", db_default="")
    # Whether the workspace let traces carry prompts and completions when the run was started:
    # its model calls carry them only while this and the workspace's setting (as it is now) allow.
    trace_content = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="runs_run_created"),
            models.Index(fields=["status", "-created_at"], name="runs_run_status_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "parent_step"],
                name="runs_run_one_child_per_step",
                condition=models.Q(parent__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"run {self.id} of {self.agent.name}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def trace_url(self) -> str:
        """Where the trace viewer shows this run's trace (FOUNDRY_TRACE_URL_TEMPLATE), or empty."""
        template = settings.FOUNDRY_TRACE_URL_TEMPLATE
        if not template or not self.trace_id:
            return ""
        return template.replace("{trace_id}", self.trace_id)


class Step(models.Model):
    """One model call or one tool call of a run, as the worker recorded it when it completed."""

    class Node(models.TextChoices):
        MODEL = "model", "Model call"
        TOOL = "tool", "Tool call"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    node = models.CharField(max_length=10, choices=Node.choices)
    tool = models.CharField(max_length=63, blank=True)
    arguments = models.JSONField(null=True, blank=True)
    # ok | error | denied (DIS rule) | rejected (approver)
    status = models.CharField(max_length=10)
    error = models.CharField(max_length=60, blank=True)
    summary = models.TextField(blank=True)
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    # The runtime's step record as it was (warnings, approval, tool calls, …).
    record = models.JSONField()
    # What re-creates the step without doing it again: the model's answer or the tool's result.
    replay = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="runs_step_run_index")]

    def __str__(self) -> str:
        return f"step {self.index} of run {self.run_id}"


class Approval(models.Model):
    """A tool call waiting for (or decided by) a human approver."""

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled with the run"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="approvals")
    step = models.PositiveIntegerField(help_text="Index of the step (tool call) waiting for approval.")
    tool = models.CharField(max_length=63)
    tool_call_id = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)
    # An overage's: the budgets it asks to spend past, each keyed by its month and amount (None: a
    # tool call's, or an overage asked before approvals named them). Another set is another question.
    caps = models.JSONField(null=True, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    approver = models.CharField(max_length=255, blank=True)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="runs_approval_run_step")]

    def __str__(self) -> str:
        return f"approval of {self.tool} (step {self.step}) in run {self.run_id}"
