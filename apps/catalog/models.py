"""A tenant's domains (DIS) and agent manifests, their immutable versions, and deployments.

Versions and deployments are append-only: a database trigger refuses UPDATE, DELETE and TRUNCATE
on them (see migrations/0002), so history cannot be rewritten even by a bug in this code.
"""

from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    DOMAIN = "domain", "Domain"
    AGENT = "agent", "Agent"


class Document(models.Model):
    """A named domain or agent; its content lives in its versions."""

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=63)
    created_at = models.DateTimeField(default=timezone.now)
    latest_number = models.PositiveIntegerField(default=0)
    # Agents only: the live deployment (None until first deployed).
    live = models.ForeignKey("Deployment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="catalog_document_kind_name")]
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def tag_prefix(self) -> str:
        return f"{'dis' if self.kind == Kind.DOMAIN else 'agent'}/{self.name}"


class Version(models.Model):
    """One published content of a document. Never edited, never deleted."""

    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of the content.")
    source = models.TextField(help_text="The YAML as published (comments included).")
    content = models.JSONField()
    message = models.CharField(max_length=500, blank=True)
    author_name = models.CharField(max_length=255)
    author_email = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    restored_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Agents only: the DIS version the manifest pins.
    domain_version = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "number"], name="catalog_version_number")]
        ordering = ["document_id", "number"]

    def __str__(self) -> str:
        return f"{self.document.name}@{self.number}"

    @property
    def tag(self) -> str:
        return f"{self.document.tag_prefix}/v{self.number}"


class Deployment(models.Model):
    """A manifest version made live. The newest deployment of an agent is its live one."""

    class Reason(models.TextChoices):
        DEPLOY = "deploy", "Deploy"
        MIGRATE = "migrate", "Migrate to a newer domain"

    agent = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="deployments")
    domain_version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.DEPLOY)
    deployed_by = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} deployed"
