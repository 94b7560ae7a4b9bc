"""The audit trail: one hash chain per tenant and one for the platform (tenant 0), in the public
schema, each row carrying its `tenant_id` under forced Row-Level Security.

Rows are appended only by the SQL function `audit_append` (migrations/0002, 0007), which takes the
chain's head row lock, numbers the event, computes its hash over the canonical serialisation
(chain.py) including the previous hash, and inserts it — one round trip, linear per chain, no
lock shared between chains. Triggers refuse UPDATE, DELETE and TRUNCATE of events and signed
checkpoints for every role, and the app role holds only INSERT and SELECT on them.

Personal data stays out of the chain: events name actors by a pseudonymous id (`user:42`,
`token:ab12cd34`, `service:runs`); names and emails live in `AuditActor`, which can be erased.
"""

import json
import math
import re
from urllib.parse import urlsplit

from django.contrib.postgres.fields import ArrayField
from django.db import models

PLATFORM = 0  # tenant_id of the platform's own chain


def url_origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, with `/[redacted]` when it had more (a path or query may
    hold a token): how the audit trail and model history name a webhook."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin + "/[redacted]" if url.rstrip("/") != origin else origin


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"


# A surrogate written as a JSON escape: paired (an emoji escaped) or not, the platform never writes
# one (details_text keeps text as it is), so such details came from elsewhere and are shown as text.
# (A backslash in the text before such letters is stored `\\ud800`: no escape of a surrogate.)
_SURROGATE_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    """A JSON number with a fraction or exponent, as a float; ValueError past a double's range."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is past a double's range")
    return value


def _not_json(constant: str):
    raise ValueError(f"{constant} is no JSON")


class AuditEvent(models.Model):
    tenant_id = models.BigIntegerField()
    seq = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    actor_type = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=100)
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # Canonical JSON (sorted keys, compact), hashed exactly as stored.
    details = models.TextField(default="{}")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # Not a column: set by readers of a chain hashed under another id (AuditChainBase), so that
    # exported records say which id verifies them.
    hashed_as: int | None = None

    class Meta:
        ordering = ["tenant_id", "-seq"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "seq"], name="audit_event_chain_seq")]
        indexes = [
            models.Index(fields=["tenant_id", "occurred_at"], name="audit_event_time"),
            models.Index(fields=["tenant_id", "action", "seq"], name="audit_event_action"),
            models.Index(fields=["tenant_id", "actor_id", "seq"], name="audit_event_actor"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_id} ({self.outcome})"

    @property
    def actor(self) -> str:
        return self.actor_id

    @property
    def data(self):
        """The details as recorded (JSON); the stored text itself when it is not JSON, which the
        platform never writes (an edit outside it, that verification reports) — `Infinity` or
        `NaN`, a number past a double's range (`1e400`, which Python reads as infinity and would
        write back as `Infinity`), a lone surrogate's escape (`\\ud800`, which no UTF-8 output can carry) included — or
        JSON nested past Python's decoder (an imported archive's, say): shown and exported as that
        text (which export verification reads as the stored text), not a 500."""
        if _SURROGATE_ESCAPE.search(self.details):  # the platform writes text unescaped (details_text)
            return self.details
        try:
            return json.loads(self.details, parse_constant=_not_json, parse_float=_finite)
        except (ValueError, RecursionError):
            return self.details

    @property
    def target(self) -> str:
        return f"{self.target_type}:{self.target_id}" if self.target_type else self.target_id


class AuditChain(models.Model):
    """The head of one chain: the last sequence number and hash (the append lock is its row).

    A cache (UNLOGGED, migrations/0004): rebuilt from the chain's last event and its base."""

    tenant_id = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    # The hash the last append replaced: how audit_append's one UPDATE hands it back (0007).
    prev_hash = models.CharField(max_length=64, null=True)  # noqa: DJ001 (written by SQL only)
    hash_tenant_id = models.BigIntegerField(null=True)  # as AuditChainBase says; null: tenant_id
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"chain {self.tenant_id} at #{self.seq}"


class AuditChainBase(models.Model):
    """Where a chain starts, when not at #1 under its own tenant id (logged, unlike the head).

    `hash_tenant_id`: the id its hashes and signed checkpoints are computed under — the tenant
    it was first written for, kept when the chain is imported into a new tenant, so imported
    events keep their hashes and signatures. `signed_as`: the ids it was stored under on the way
    (an import of an import), which its checkpoints signed there name. `first_seq`/`first_prev_hash`: the first event
    still kept after retention pruned older ones (`audit_prune`); a signed checkpoint at
    `first_seq - 1` with hash `first_prev_hash` vouches for the start (verify.py checks it).
    """

    tenant_id = models.BigIntegerField(primary_key=True)
    hash_tenant_id = models.BigIntegerField()
    # The ids the chain was stored under before it came here (each import's source, and theirs):
    # checkpoints signed there name the chain by them (None: it never moved, or moved once only).
    signed_as = ArrayField(models.BigIntegerField(), null=True, blank=True)
    first_seq = models.BigIntegerField(default=1)
    first_prev_hash = models.CharField(max_length=64, default="0" * 64)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"chain {self.tenant_id} from #{self.first_seq} (hashed as {self.hash_tenant_id})"


class AuditActor(models.Model):
    """Who a pseudonymous actor id is: the personal data events do not hold (erasable)."""

    tenant_id = models.BigIntegerField()
    actor_id = models.CharField(max_length=100)
    actor_type = models.CharField(max_length=20)
    display_name = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 — None: erased
    email = models.CharField(max_length=254, null=True, blank=True)  # noqa: DJ001 — None: erased
    first_seen_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "actor_id"], name="audit_actor_chain_id")]

    def __str__(self) -> str:
        return self.actor_id if self.erased_at else f"{self.actor_id} ({self.display_name or self.email})"


class AuditCheckpoint(models.Model):
    """A chain head signed with the platform's key: proof of the chain up to `seq`."""

    tenant_id = models.BigIntegerField()
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)  # base64 Ed25519 signature of chain.checkpoint_message

    class Meta:
        ordering = ["tenant_id", "-seq"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "seq", "key_id"], name="audit_checkpoint_once")]

    def __str__(self) -> str:
        return f"checkpoint of chain {self.tenant_id} at #{self.seq} ({self.key_id})"


# --- SIEM delivery (apps/audit/delivery.py, docs/audit-siem.md) --------------------------------


class AuditSink(models.Model):
    """Where a tenant's chain is pushed: a syslog receiver or an HTTPS webhook, and how far it got.

    `cursor` is the last sequence number the receiver acknowledged; delivery resumes after it, so
    a restart neither skips events nor resends more than the batch that was in flight. Rows live
    in the public schema under the same forced Row-Level Security as the events (migration 0003).
    """

    class Kind(models.TextChoices):
        SYSLOG = "syslog", "Syslog (RFC 5424 over TCP)"
        WEBHOOK = "webhook", "HTTPS webhook"

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSON"
        OCSF = "ocsf", "OCSF"

    tenant_id = models.BigIntegerField()
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.JSONL)
    enabled = models.BooleanField(default=True)
    # syslog
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    tls = models.BooleanField(default=True)
    # webhook
    url = models.CharField(max_length=500, blank=True)
    secret_encrypted = models.TextField(blank=True)  # HMAC key, Fernet (apps/providers/encryption.py)
    # Both: PEM certificates to trust instead of the system's CAs (an internal CA).
    ca_certificate = models.TextField(blank=True)
    # Delivery state: only delivery.py writes it (compare-and-set on cursor and updated_at).
    cursor = models.BigIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "name"], name="audit_sink_name")]

    def __str__(self) -> str:  # also what model history names it by: a webhook's origin only
        shown = url_origin(self.url) if self.kind == self.Kind.WEBHOOK else self.destination
        return f"{self.name} ({self.kind} → {shown})"

    @property
    def destination(self) -> str:
        if self.kind == self.Kind.WEBHOOK:
            return self.url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'tls' if self.tls else 'tcp'}://{host}:{self.port}"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)
