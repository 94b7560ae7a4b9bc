"""A workspace's data lifecycle settings and export jobs, in its own schema (docs/lifecycle.md).

Both live with the data they govern: dropping the schema at purge takes them along.
"""

import uuid

from django.db import models
from django.db.models.functions import Now


class RetentionPolicy(models.Model):
    """How long each kind of data is kept; None keeps it for ever. One row per workspace (pk 1).

    Ages count from when a thing ended: a run from `finished_at` (runs still going are never
    touched), a usage record from its time, an export from its creation.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    runs_days = models.PositiveIntegerField(null=True, blank=True)  # finished runs, their steps and approvals
    checkpoints_days = models.PositiveIntegerField(null=True, blank=True, default=30)  # then only the final state
    usage_detail_days = models.PositiveIntegerField(null=True, blank=True, default=400)  # once rolled up
    traces_days = models.PositiveIntegerField(null=True, blank=True, default=30)  # runs' trace references
    exports_days = models.PositiveIntegerField(null=True, blank=True, default=7)  # export archives
    # The audit trail: kept for ever while on legal hold; otherwise `audit_days` (None: for ever).
    audit_legal_hold = models.BooleanField(default=False)
    audit_days = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.CharField(max_length=255, blank=True)
    # Bookkeeping, not a setting: every run that finished before this time has had its checkpoints
    # cut to the final state by a pass that completed (apps/lifecycle/retention.py), so the next
    # pass starts here instead of walking the workspace's whole history again.
    checkpoints_pruned_before = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="retention_policy_singleton")]

    def __str__(self) -> str:
        return "retention policy"


class Export(models.Model):
    """One export of the workspace to an archive (apps/lifecycle/archive.py), and its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True)  # name in the default storage
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)  # of the whole archive
    error = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=255)
    # Whether the archive holds members' password hashes: only when an owner started it. A hash can
    # be cracked offline, and an admin, who may export, may not become an owner (exports.py).
    password_hashes = models.BooleanField(default=False, db_default=False)
    # Workers that took it up: each one lost (killed, out of memory) hands it to the next delivery
    # of its task, up to MAX_ATTEMPTS (exports.py); not for ever.
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # the download link's end

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"


class CheckpointErasure(models.Model):
    """A run an erasure cancelled while a worker ran it: its checkpoints name the person and go once
    it has stopped (apps/lifecycle/erasure.py `erased_runs_forget`). Written in the erasure's
    transaction, so that the deletion is owed whatever happens after the commit (the task that
    does it could not be queued, or gave up): the runs sweep finishes what is left."""

    run_id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    def __str__(self) -> str:
        return f"checkpoints of run {self.run_id}, owed by an erasure"
