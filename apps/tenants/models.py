import ipaddress

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DELETING = "deleting", "Scheduled for deletion"  # suspended until purged (apps/lifecycle/deletion.py)

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        TEAM = "team", "Team"
        ENTERPRISE = "enterprise", "Enterprise"

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Refreshed by the tenant_refresh_stats task so the operator console needs no per-schema query.
    member_count = models.PositiveIntegerField(default=0)
    # Private networks this tenant's agent `http` tools may reach (CIDRs). Set by operators only
    # (`manage.py tenant_http_networks`): a private address may be the platform's own.
    http_allowed_networks = ArrayField(models.CharField(max_length=50), default=list, db_default=[], blank=True)
    # Operators' overrides of the plan's limits (`manage.py tenant_limits`); null: the plan's value.
    requests_per_second_override = models.PositiveIntegerField(null=True, blank=True)
    burst_override = models.PositiveIntegerField(null=True, blank=True)
    concurrent_runs_override = models.PositiveIntegerField(null=True, blank=True)
    monthly_tokens_override = models.PositiveBigIntegerField(null=True, blank=True)
    # Deletion scheduled: the purge may run from this moment on (null: none scheduled).
    purge_after = models.DateTimeField(null=True, blank=True)
    deletion_requested_by = models.CharField(max_length=255, blank=True, db_default="")
    # What the workspace was when its deletion was scheduled (active, suspended): what a
    # cancellation brings back, so it never lifts an operator's suspension.
    status_before_deletion = models.CharField(max_length=20, blank=True, db_default="")
    # The workspace lets traces carry its model calls' prompts and completions (off: never).
    trace_content = models.BooleanField(default=False, db_default=False)

    # Provisioning creates the schema itself (apps/tenants/services.py), inside its transaction.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def primary_host(self) -> str:
        """Its primary domain (the one under the base domain), never a custom one an archive or an
        operator attached: links sent to its people point there (`domains.all()`: prefetched
        lists read it without a query). Empty without domains."""
        domains = sorted(self.domains.all(), key=lambda d: (not d.is_primary, d.pk))
        return domains[0].domain if domains else ""

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"

    def http_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.http_allowed_networks]


class Plan(models.Model):
    """The limits of one plan (`Tenant.plan` names it). Rows are data: seeded by a migration,
    changed by operators; a tenant's own overrides are on the tenant."""

    name = models.CharField(max_length=20, primary_key=True, choices=Tenant.Plan.choices)
    requests_per_second = models.PositiveIntegerField()
    burst = models.PositiveIntegerField()
    concurrent_runs = models.PositiveIntegerField()
    monthly_tokens = models.PositiveBigIntegerField(null=True, blank=True)  # null: unlimited

    class Meta:
        ordering = ["requests_per_second"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requests_per_second__gt=0), name="plan_requests_per_second_positive"
            ),
            models.CheckConstraint(condition=models.Q(burst__gt=0), name="plan_burst_positive"),
            models.CheckConstraint(condition=models.Q(concurrent_runs__gt=0), name="plan_concurrent_runs_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain


class BaseSchemaDefinition(models.Model):
    """The base schema new workspaces are made from (TENANT_BASE_SCHEMA), as the SQL that makes
    it, rows included: pg_dump's, taken each time the base is migrated (apps/tenants/schemas.py).
    `migrations` fingerprints the base's applied migrations at that time: a definition whose
    fingerprint no longer matches the base's is stale, and is not used."""

    migrations = models.CharField(max_length=64, primary_key=True)
    sql = models.TextField()
    captured_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"base schema at {self.migrations[:12]}"
