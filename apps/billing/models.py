from django.db import models
from django.db.models import Q
from django.utils import timezone


class Price(models.Model):
    """What one model's tokens cost from `effective_from` on (USD per million tokens), in the
    public schema: the platform's price list, edited by operators.

    Prices are versioned, never edited: a new price is a new row. A usage record is priced when
    it is written, with the price in effect then, and keeps that cost (apps/runs/usage.py), so a
    later price changes no history.

    `cache_write_per_mtok` prices prompt tokens written to the provider's cache (Anthropic bills
    them above the input price); NULL: they cost the input price."""

    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cached_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cache_write_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    effective_from = models.DateTimeField()
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model", "effective_from"], name="billing_price_once"),
            models.CheckConstraint(
                condition=Q(input_per_mtok__gte=0) & Q(output_per_mtok__gte=0) & Q(cached_per_mtok__gte=0),
                name="billing_price_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(cache_write_per_mtok__isnull=True) | Q(cache_write_per_mtok__gte=0),
                name="billing_price_cache_write_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["provider", "model", "-effective_from"], name="billing_price_lookup")]

    def __str__(self) -> str:
        when = self.effective_from
        # A row made with the time as text (before it is saved and read back) is named all the same.
        shown = f"{when:%Y-%m-%d %H:%M}" if hasattr(when, "strftime") else str(when)
        return f"{self.provider}/{self.model} from {shown}"


class UsageRecord(models.Model):
    """One model call's tokens and cost: the usage ledger every bill is read from.

    In the public schema with `tenant_id` on every row, guarded by Row-Level Security (ENABLE and
    FORCE, apps/billing/rls.py): a connection sees and writes only the rows of the tenants its
    transaction is scoped to. Append-only (UPDATE, DELETE and TRUNCATE refused by triggers).
    Written once per (tenant, run, step) by apps/runs/usage.py; `run_id` is a plain value, not a
    key, so the ledger outlives the runs it counts."""

    tenant_id = models.BigIntegerField()
    project = models.CharField(max_length=63)
    agent = models.CharField(max_length=63)
    run_id = models.UUIDField(null=True, blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField()
    output_tokens = models.PositiveIntegerField()
    cached_tokens = models.PositiveIntegerField(default=0)
    # Of the input tokens, those written to the provider's prompt cache (never also cached ones).
    # db_default: an INSERT that names no such column (bench/usage.py) writes 0.
    cache_write_tokens = models.PositiveIntegerField(default=0, db_default=0)
    latency_ms = models.FloatField()
    # USD, priced when written with the price then in effect; NULL: no price known.
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_usage"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "run_id", "step"],
                name="billing_usage_once_per_step",
                condition=Q(run_id__isnull=False),
            )
        ]
        indexes = [models.Index(fields=["tenant_id", "created_at"], name="billing_usage_tenant_time")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.input_tokens}+{self.output_tokens} tokens"


class UsageMonth(models.Model):
    """A tenant's running totals for one month (UTC), whole (`project` "") and per project: what
    quotas are checked against before each model call. Kept in the statement that writes the
    ledger row, so it never drifts from the ledger. Row-Level Security as the ledger."""

    tenant_id = models.BigIntegerField()
    month = models.DateField()  # the first day of the month
    project = models.CharField(max_length=63, blank=True)
    calls = models.PositiveBigIntegerField(db_default=0)
    tokens = models.PositiveBigIntegerField(db_default=0)  # input + output
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, db_default=0)
    # The highest share (80, 100) already announced by an audit event this month: of the budget's
    # tokens, of its cost, and of the plan's monthly tokens (a cap of its own, on the "" row),
    # each with the cap it was a share of: a cap changed since (a budget raised, a plan's tokens
    # overridden) is a new cap, whose marks are announced afresh.
    tokens_alerted = models.PositiveSmallIntegerField(db_default=0)
    cost_alerted = models.PositiveSmallIntegerField(db_default=0)
    plan_tokens_alerted = models.PositiveSmallIntegerField(db_default=0)
    tokens_alerted_limit = models.DecimalField(max_digits=24, decimal_places=8, null=True)
    cost_alerted_limit = models.DecimalField(max_digits=24, decimal_places=8, null=True)
    plan_tokens_alerted_limit = models.DecimalField(max_digits=24, decimal_places=8, null=True)

    class Meta:
        db_table = "billing_usage_month"
        constraints = [
            models.UniqueConstraint(fields=["tenant_id", "month", "project"], name="billing_usage_month_once")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.month:%Y-%m} {self.project or '*'}"


class UsageDay(models.Model):
    """A day's usage (UTC) per project, agent and model: the roll-up a beat job writes from the
    ledger (apps/billing/rollups.py), which charts and statements read. Rewritten whole for a day
    until the day is over. Row-Level Security as the ledger."""

    tenant_id = models.BigIntegerField()
    day = models.DateField()
    project = models.CharField(max_length=63)
    agent = models.CharField(max_length=63)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    calls = models.PositiveBigIntegerField()
    input_tokens = models.PositiveBigIntegerField()
    output_tokens = models.PositiveBigIntegerField()
    cached_tokens = models.PositiveBigIntegerField()
    cache_write_tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8)
    unpriced_calls = models.PositiveBigIntegerField()

    class Meta:
        db_table = "billing_usage_day"
        ordering = ["day", "project", "agent", "provider", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "day", "project", "agent", "provider", "model"], name="billing_usage_day_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} {self.agent} {self.model}"


class Budget(models.Model):
    """A tenant's monthly budget, for the whole workspace (`project` "") or one project, in tokens
    and/or USD; set by the workspace's admins. When spent, a run stops with `quota_exceeded`, or
    waits for a human to approve the overage when `on_exhausted` says so. Row-Level Security."""

    class OnExhausted(models.TextChoices):
        STOP = "stop", "Stop the run"
        APPROVE = "approve", "Ask for approval"

    tenant_id = models.BigIntegerField()
    project = models.CharField(max_length=63, blank=True)
    monthly_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    monthly_cost_usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    on_exhausted = models.CharField(max_length=10, choices=OnExhausted.choices, default=OnExhausted.STOP)
    updated_by = models.CharField(max_length=255)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_budget"
        ordering = ["project"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "project"], name="billing_budget_once")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.project or '*'}"
