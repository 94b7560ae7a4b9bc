"""Model history (django-auditlog): which rows keep a history of their changes, and who made them.

`auditlog` is a shared and a tenant app, so a LogEntry lives in the schema of the row it
describes: a tenant's members, tokens, catalog and credentials in the tenant's own schema (a
tenant sees only its own history, and dropping its schema drops its history), tenants and
operators in public. The hash-chained trail (`audit_record`) says what happened; this says how
each row changed.

Each entry names its actor the way the trail does, in `additional_data["actor"]` (`user:42`,
`token:ab12cd34ef56`, `operator:3`, `service:cli:revoke_api_token`, `anonymous`); `actor` (the
foreign key) is set only for a person of the entry's own schema. Its `cid` is the request id.

auditlog listens to model signals, so QuerySet.update/bulk_create/bulk_update are not
history: registered models are changed through save() (docs/audit.md, "Model history").
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from auditlog.context import auditlog_value, set_extra_data
from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from celery import current_task
from django.db import connection
from django.db.models.signals import pre_save
from django.http import HttpRequest

from apps.audit.models import url_origin
from apps.audit.services import actor_of

REDACTED = "[redacted]"
MASK = "apps.audit.history.history_mask"


def history_subject(value: str) -> str:
    """A member's subject at their identity provider in a history entry: its keyed digest."""
    from apps.audit.services import subject_digest

    return value if value in ("", "None") else subject_digest(value)


def history_mask(value: str) -> str:
    """A secret's value in a history entry: whether there is one, never what it is."""
    return value if value in ("", "None") else REDACTED


def history_mask_sink(value: str) -> str:
    """An audit sink's masked fields in a history entry: its secret as `history_mask` has it; its
    webhook URL as its origin only, as the audit trail has it — a path or query may hold a token."""
    if value in ("", "None"):
        return value
    if value.startswith(("https://", "http://")):
        return url_origin(value)
    return REDACTED


def history_register() -> None:
    """Register the models whose changes are history (called once, from AuditConfig.ready)."""
    from apps.accounts.models import User
    from apps.audit.models import AuditSink
    from apps.billing.models import Budget, Price
    from apps.catalog.models import Deployment, Document, Version
    from apps.identity.models import ExternalIdentity, SsoConfiguration
    from apps.lifecycle.models import RetentionPolicy
    from apps.providers.models import ProviderCredential
    from apps.runs.models import Approval
    from apps.tenants.models import Plan, Tenant
    from apps.tokens.models import ApiToken

    # Members (tenant schemas) and operators (public). The password hash is never stored: an
    # entry shows only that it changed. last_login changes at every sign-in (the trail has those).
    auditlog.register(User, exclude_fields=["last_login"], mask_fields=["password"], mask_callable=MASK)
    auditlog.register(ApiToken, exclude_fields=["secret_hash", "last_used_at"])
    # Publishes and deployments are append-only rows: their history is their creation. The
    # content is identified by its digest, not copied (a document may be megabytes).
    auditlog.register(Version, exclude_fields=["source", "content"])
    auditlog.register(Deployment)
    auditlog.register(Document, include_fields=["kind", "name", "live"])
    auditlog.register(ProviderCredential, mask_fields=["api_key_encrypted"], mask_callable=MASK)
    auditlog.register(Approval, include_fields=["run", "step", "tool", "decision", "approver", "comment", "decided_at"])
    # A tenant's identity, status and what operators and owners set on it (quota overrides, its
    # deletion, whether traces carry content); not member_count (a statistic).
    auditlog.register(
        Tenant,
        include_fields=[
            "slug",
            "name",
            "plan",
            "status",
            "http_allowed_networks",
            "requests_per_second_override",
            "burst_override",
            "concurrent_runs_override",
            "monthly_tokens_override",
            "purge_after",
            "deletion_requested_by",
            "trace_content",
        ],
    )
    # The settings people change: SSO (its secret only as "changed"), budgets, retention, plans,
    # prices, audit sinks (their configuration, not their delivery progress) and the links of
    # members to their identity provider's subjects.
    auditlog.register(SsoConfiguration, mask_fields=["client_secret_encrypted"], mask_callable=MASK)
    auditlog.register(ExternalIdentity, mask_fields=["subject"], mask_callable="apps.audit.history.history_subject")
    auditlog.register(Budget)
    auditlog.register(RetentionPolicy)
    auditlog.register(Plan)
    auditlog.register(Price)
    auditlog.register(
        AuditSink,
        exclude_fields=["delivered_at", "failures", "next_attempt_at", "last_error_code", "last_error"],
        mask_fields=["secret_encrypted", "url"],
        mask_callable="apps.audit.history.history_mask_sink",
    )
    pre_save.connect(_service_actor_fill, sender=LogEntry, dispatch_uid="foundry.history.service_actor")


def _actor_data(actor: Callable[[], Any], *, schema: str, remote_addr: str | None = None) -> dict:
    """auditlog context data; callables are called when an entry is saved, so the actor is
    whoever the request acts as by then (DRF authenticates tokens inside the view)."""

    def member_pk() -> int | None:
        from apps.accounts.models import User

        who = actor()
        # The foreign key points into the entry's schema: an operator acting in a tenant's
        # schema (provisioning) is named in additional_data only.
        same_schema = connection.schema_name == schema
        return who.pk if isinstance(who, User) and who.is_authenticated and same_schema else None

    return {
        "actor_id": member_pk,
        "additional_data": lambda: {"actor": actor_of(actor()).id},
        "remote_addr": remote_addr,
    }


@contextmanager
def _history_context(data: dict) -> Iterator[None]:
    # auditlog's context does not put back the one it replaced when it ends; this does, so
    # contexts nest (a command inside a request, a service actor inside a task).
    token = auditlog_value.set(None)
    try:
        with set_extra_data(context_data=data):
            yield
    finally:
        auditlog_value.reset(token)


@contextmanager
def history_actor(actor: Any, *, remote_addr: str | None = None) -> Iterator[None]:
    """Attribute the history written inside the block to `actor`: a member, an API principal,
    or a service name (`"cli:revoke_api_token"` → `service:cli:revoke_api_token`)."""
    with _history_context(_actor_data(lambda: actor, schema=connection.schema_name, remote_addr=remote_addr)):
        yield


def _service_actor_fill(sender, instance: LogEntry, **kwargs) -> None:
    """An entry written outside any actor context names the service: the Celery task, or the system."""
    if auditlog_value.get(None) is not None or instance.additional_data:
        return
    task = current_task
    name = task.name if task and task.request.id else "system"
    instance.additional_data = {"actor": actor_of(name).id}


class HistoryMiddleware(AuditlogMiddleware):
    """auditlog's middleware (after authentication), attributing history to the request's
    principal at the moment of each change: the signed-in member or operator, or the API token
    DRF authenticated. The address is REMOTE_ADDR, as in the trail (X-Forwarded-For is the
    client's to write, so it is not trusted here)."""

    def get_extra_data(self, request: HttpRequest) -> dict:
        user = getattr(request, "user", None)
        if user is not None:
            # Resolve the session user now, while the connection is on the request's schema.
            user.is_authenticated  # noqa: B018
        return _actor_data(
            lambda: getattr(request, "user", None),
            schema=connection.schema_name,
            remote_addr=request.META.get("REMOTE_ADDR") or None,
        )

    def __call__(self, request: HttpRequest):
        with _history_context(self.get_extra_data(request)):
            return self.get_response(request)


def tenant_public_history(
    tenant_id: int, *, history: str = "public.auditlog_logentry", deleted: bool = True
) -> tuple[str, list]:
    """A condition on `l` (a row of `history`) and `c` (its content type, joined) selecting the
    public model history of a workspace's own rows: its tenant and domain rows, and its budgets
    and audit sinks (public models with a tenant_id, whose history table names no tenant). The
    purge deletes these entries, a workspace's backup keeps them (apps/lifecycle). `deleted`:
    also the entries of budgets and sinks deleted since, whose recorded creation in `history`
    named the tenant — only where `history` is the platform's own (a backup's file could claim any
    id, another workspace's next budget's)."""
    # `history` is a table name of the caller's, never input.
    sql = (
        "((c.app_label = 'tenants' AND c.model = 'tenant' AND l.object_pk = %s)"
        " OR (c.app_label = 'tenants' AND c.model = 'domain'"
        "     AND l.object_pk IN (SELECT id::text FROM public.tenants_domain WHERE tenant_id = %s))"
        " OR (c.app_label = 'billing' AND c.model = 'budget'"
        "     AND l.object_pk IN (SELECT id::text FROM public.billing_budget WHERE tenant_id = %s))"
        " OR (c.app_label = 'audit' AND c.model = 'auditsink'"
        "     AND l.object_pk IN (SELECT id::text FROM public.audit_auditsink WHERE tenant_id = %s))"
    )
    params = [str(tenant_id), tenant_id, tenant_id, tenant_id]
    if deleted:
        # An update records only the fields it changed: the creation names the tenant.
        sql += (
            " OR (((c.app_label, c.model) IN (('billing', 'budget'), ('audit', 'auditsink')))"  # noqa: S608
            f"     AND l.object_pk IN (SELECT n.object_pk FROM {history} n"
            "                          WHERE n.content_type_id = c.id"
            "                            AND ((n.changes -> 'tenant_id') @> jsonb_build_array(%s::bigint)"
            "                                 OR (n.changes -> 'tenant_id') @> jsonb_build_array(%s::text))))"
        )
        params += [tenant_id, str(tenant_id)]
    return sql + ")", params
