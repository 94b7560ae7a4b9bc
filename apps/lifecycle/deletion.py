"""Deleting a workspace, in two steps (docs/lifecycle.md, "Deleting a workspace").

1. `tenant_deletion_schedule`: the workspace is suspended at once (console, API, MCP and its runs
   stop) and `purge_after` is set, a grace period ahead; `tenant_deletion_cancel` within it gives
   everything back.
2. `tenant_purge` (the beat task `lifecycle.purge_due`, the operator console, `manage.py
   delete_tenant --purge`): in one transaction its schema is dropped (its rows and LangGraph
   checkpoints with it), every public row carrying its id is deleted (inventory.py finds the
   tables in the catalog), and its own row goes; what remains is one event of the platform's
   audit chain — the tombstone: who, when, which workspace, how many rows of each table; its own
   chain takes no more events (audit migrations/0017). Its Redis keys and stored files go first,
   found by its names while its locked row still holds them (after the commit a new workspace may
   take the slug), and a failure there rolls the purge back for the next pass.
"""

import functools
import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, quote_schema_name, schema_context

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.accounts.sessions import sessions_all_end
from apps.audit.history import tenant_public_history
from apps.audit.models import PLATFORM, AuditActor
from apps.audit.scope import rls_scope
from apps.audit.services import actor_of, audit_record, platform_actor_id
from apps.identity.jwks import jwks_schema_forget
from apps.identity.oidc import sso_config_forget
from apps.lifecycle.erasing import erasing
from apps.lifecycle.inventory import (
    STORAGE_KINDS,
    public_tenant_tables,
    redis_clients,
    redis_patterns,
    schema_tables,
)
from apps.lifecycle.retention import legal_hold_refuse
from apps.tenants.models import Tenant
from apps.tenants.routing import route_invalidate
from apps.tenants.services import tenant_row_locked, tenant_work_resume
from foundry.errors import ServiceError

logger = logging.getLogger(__name__)

MAX_GRACE_DAYS = 365


@dataclass
class Purged:
    tenant_id: int
    slug: str
    schema: str
    rows: dict[str, int] = field(default_factory=dict)  # "schema.table" → rows deleted
    redis_keys: int = 0
    files: int = 0
    actors_erased: int = 0  # the platform chain's actor rows of its members and tokens

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _backup_not_running() -> None:
    """A purge drops a schema: never while a whole-database backup dumps (its pg_dump would fail,
    and every workspace's backup with it). Shared with other purges, to this transaction's end;
    refused while a backup holds it — the hourly pass purges the workspace once it is done."""
    from apps.lifecycle.backup import SCHEMAS_LOCK

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock_shared(hashtextextended(%s, 0))", [SCHEMAS_LOCK])
        if not cursor.fetchone()[0]:
            raise ServiceError(
                "backup_running",
                "A backup of the whole database is running; the workspace is purged once it is done.",
                status=409,
            )


def _not_scheduled(tenant: Tenant) -> ServiceError:
    return ServiceError("deletion_not_scheduled", f"{tenant.slug} is not scheduled for deletion.", status=409)


def _locked(tenant: Tenant) -> Tenant:
    connection.set_schema_to_public()
    return tenant_row_locked(tenant)


def _on_public(service):
    """`service` on the public schema (where `_locked` puts the connection), and the connection
    back on the schema it was on afterwards: an owner's request on the workspace's host goes on
    in its workspace's schema."""

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        with schema_context(get_public_schema_name()):
            return service(*args, **kwargs)

    return wrapper


@_on_public
@transaction.atomic
def tenant_deletion_schedule(
    *, tenant: Tenant, actor: object, grace_days: float | None = None, request: HttpRequest | None = None
) -> Tenant:
    """Suspend the workspace now and let it be purged once `grace_days` (default
    FOUNDRY_TENANT_DELETION_GRACE_DAYS) have passed."""
    grace = settings.FOUNDRY_TENANT_DELETION_GRACE_DAYS if grace_days is None else grace_days
    if not isinstance(grace, int | float) or isinstance(grace, bool) or not 0 <= grace <= MAX_GRACE_DAYS:
        raise ServiceError("grace_invalid", f"The grace period is 0 to {MAX_GRACE_DAYS} days.")
    tenant = _locked(tenant)
    # An owner (an operator, a command) as they stand now, in the workspace: one demoted or
    # removed while the request ran deletes nothing.
    with schema_context(tenant.schema_name):
        actor = allowed_now(actor, Permission.OWNERS_MANAGE)
    if tenant.status == Tenant.Status.DELETING:
        raise ServiceError(
            "deletion_scheduled", f"Workspace {tenant.slug} is already scheduled for deletion.", status=409
        )
    _refuse_legal_hold(tenant)
    now = timezone.now()
    tenant.status_before_deletion = tenant.status
    tenant.status, tenant.status_changed_at = Tenant.Status.DELETING, now
    tenant.purge_after = now + timedelta(days=grace)
    tenant.deletion_requested_by = actor_of(actor).id
    tenant.save(
        update_fields=["status", "status_changed_at", "purge_after", "deletion_requested_by", "status_before_deletion"]
    )
    data = {"slug": tenant.slug, "purge_after": tenant.purge_after.isoformat(), "grace_days": grace}
    data["sessions_ended"] = sessions_all_end(tenant.schema_name)  # as a suspension ends them
    for chain in (tenant.pk, PLATFORM):  # the workspace's own owners and admins read theirs
        audit_record(
            action="tenant.deletion_scheduled", actor=actor, target=tenant, request=request, chain=chain, data=data
        )
    hosts = list(tenant.domains.values_list("domain", flat=True))
    transaction.on_commit(lambda: route_invalidate(*hosts))
    return tenant


def _refuse_legal_hold(tenant: Tenant) -> None:
    """A workspace whose audit trail is on legal hold is neither scheduled for deletion nor
    purged: a purge erases the trail the hold keeps. Its owners lift the hold first (itself an
    audited change), while the workspace is active."""
    with schema_context(tenant.schema_name):
        legal_hold_refuse("the workspace can be deleted", workspace=f"Workspace {tenant.slug}")


@_on_public
@transaction.atomic
def tenant_deletion_cancel(*, tenant: Tenant, actor: object, request: HttpRequest | None = None) -> Tenant:
    """Within the grace period: the workspace is as it was before — active again, or still
    suspended if an operator had suspended it."""
    tenant = _locked(tenant)
    if tenant.status != Tenant.Status.DELETING:
        raise ServiceError(
            "deletion_not_scheduled", f"Workspace {tenant.slug} is not scheduled for deletion.", status=409
        )
    suspended = tenant.status_before_deletion == Tenant.Status.SUSPENDED
    tenant.status = Tenant.Status.SUSPENDED if suspended else Tenant.Status.ACTIVE
    tenant.status_changed_at = timezone.now()
    tenant.purge_after, tenant.deletion_requested_by, tenant.status_before_deletion = None, "", ""
    tenant.save(
        update_fields=["status", "status_changed_at", "purge_after", "deletion_requested_by", "status_before_deletion"]
    )
    for chain in (tenant.pk, PLATFORM):
        audit_record(
            action="tenant.deletion_cancelled",
            actor=actor,
            target=tenant,
            request=request,
            chain=chain,
            data={"status": tenant.status},
        )
    hosts, schema = list(tenant.domains.values_list("domain", flat=True)), tenant.schema_name
    transaction.on_commit(lambda: route_invalidate(*hosts))
    if not suspended:
        tenant_work_resume(schema)
    return tenant


@_on_public
def tenant_purge(*, tenant: Tenant, actor: object, request: HttpRequest | None = None) -> Purged:
    """Erase the workspace for good (see the module docstring). Only a workspace scheduled for
    deletion whose grace period has ended."""
    with transaction.atomic():
        tenant = _locked(tenant)
        # A status without a purge time was not scheduled here (SQL alone set it): not a purge.
        if tenant.status != Tenant.Status.DELETING or tenant.purge_after is None:
            raise ServiceError(
                "deletion_not_scheduled", f"Workspace {tenant.slug} is not scheduled for deletion.", status=409
            )
        _backup_not_running()
        # Judged by the database's clock, as audit_chain_purge judges it after the Redis keys and
        # files are gone (which no rollback brings back): a host whose clock runs ahead of it
        # would otherwise delete them for a purge the database then refuses.
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            now = cursor.fetchone()[0]
        if tenant.purge_after > now:
            raise ServiceError(
                "grace_period",
                f"Workspace {tenant.slug} may be purged from {tenant.purge_after:%Y-%m-%d %H:%M} UTC.",
                status=409,
            )
        _refuse_legal_hold(tenant)  # set while its deletion was being scheduled, say
        hosts = list(tenant.domains.values_list("domain", flat=True))
        purged = Purged(tenant.pk, tenant.slug, tenant.schema_name)
        # What lives outside this database goes first, found by the workspace's names while its
        # row still holds them (locked): once it commits, a new workspace may take the slug, and
        # its files or keys must not be taken for these (checkpoints go with the schema). A failure here rolls the
        # purge back whole, so the next pass (lifecycle.purge_due) does it again.
        purged.redis_keys = _redis_purge(tenant, hosts)
        purged.files = _files_purge(tenant.schema_name)
        with erasing():
            _database_purge(tenant, purged)
            audit_record(
                action="tenant.purged",
                actor=actor,
                target=("tenants.tenant", tenant.pk),
                request=request,
                chain=PLATFORM,
                data={
                    "slug": tenant.slug,
                    "schema": tenant.schema_name,
                    "requested_by": tenant.deletion_requested_by,
                    "scheduled_at": tenant.status_changed_at.isoformat() if tenant.status_changed_at else None,
                    "rows": purged.rows,
                    "total_rows": purged.total,
                    "platform_actors_erased": purged.actors_erased,
                },
            )
    route_invalidate(*hosts)
    # This process's copies of what the schema held (other processes' expire within seconds,
    # and are told apart from a new workspace's under the same name by its tenant id).
    sso_config_forget(purged.schema)
    jwks_schema_forget(purged.schema)
    logger.info(
        "purged workspace %s: %d rows, %d Redis keys, %d files",
        tenant.slug,
        purged.total,
        purged.redis_keys,
        purged.files,
    )
    return purged


def _database_purge(tenant: Tenant, purged: Purged) -> None:
    """Inside an erasing transaction: count and delete every row of the workspace, drop its schema."""
    with connection.cursor() as cursor:
        # Both Row-Level Security settings (audit: foundry.tenant_id, billing: foundry.tenant_ids).
        cursor.execute(
            "SELECT set_config('foundry.tenant_id', %s, true), set_config('foundry.tenant_ids', %s, true)",
            [str(tenant.pk), str(tenant.pk)],
        )
        for table in schema_tables(tenant.schema_name, bookkeeping=True):
            cursor.execute(f"SELECT count(*) FROM {table.qualified}")  # noqa: S608 — names from the catalog
            purged.rows[f"{table.schema}.{table.name}"] = cursor.fetchone()[0]
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred checks of rows written in this transaction
        cursor.execute(f"DROP SCHEMA {quote_schema_name(tenant.schema_name)} CASCADE")
        # The public model history of the tenant's own rows (auditlog_logentry names no tenant).
        history, params = tenant_public_history(tenant.pk)
        cursor.execute(
            "DELETE FROM public.auditlog_logentry l USING public.django_content_type c"  # noqa: S608
            f" WHERE l.content_type_id = c.id AND {history}",
            params,
        )
        purged.rows["public.auditlog_logentry"] = cursor.rowcount
        # The audit chain through its owner's function: the app role may not delete from it.
        cursor.execute("SELECT table_name, deleted FROM public.audit_chain_purge(%s)", [tenant.pk])
        chain = {name: deleted for name, deleted in cursor.fetchall()}
        for table in public_tenant_tables():
            if table.name in chain:
                purged.rows[f"public.{table.name}"] = chain[table.name]
                continue
            cursor.execute(f"DELETE FROM {table.qualified} WHERE tenant_id = %s", [tenant.pk])  # noqa: S608
            purged.rows[f"public.{table.name}"] = cursor.rowcount
        cursor.execute("DELETE FROM public.tenants_tenant WHERE id = %s", [tenant.pk])
        purged.rows["public.tenants_tenant"] = cursor.rowcount
    # Its members and tokens as the platform's chain knows them (`user:1@tenant:7`: who asked for
    # the deletion, say): their names and emails go, their pseudonymous ids stay in its events,
    # as an erasure leaves them (no erase_member reaches them once the workspace is gone).
    with rls_scope(PLATFORM):
        purged.actors_erased = AuditActor.objects.filter(
            tenant_id=PLATFORM, actor_id__endswith=platform_actor_id(tenant.pk, ""), erased_at__isnull=True
        ).update(display_name=None, email=None, erased_at=timezone.now())


def _redis_purge(tenant: Tenant, hosts: list[str]) -> int:
    """Delete the workspace's keys from every Redis the platform keeps them in. A Redis that
    fails stops the purge (its transaction rolls back, the next pass tries again): the slug, and
    the schema name made of it, must not go to a new workspace while the old one's cache
    entries and route keys are still there under those names."""

    clients = redis_clients()
    patterns = redis_patterns(tenant_id=tenant.pk, schema=tenant.schema_name, hosts=hosts)
    deleted = 0
    for client in clients:
        try:
            for pattern in patterns:
                keys = pattern.keys(client)
                if keys:
                    deleted += client.delete(*keys)
        except redis.RedisError as exc:
            logger.warning("purge of %s: Redis failed; the purge is rolled back", tenant.slug, exc_info=True)
            raise ServiceError(
                "redis_unavailable",
                f"Workspace {tenant.slug} was not purged: its Redis keys could not be deleted ({type(exc).__name__}).",
                status=503,
            ) from None
    return deleted


def _files_purge(schema: str) -> int:
    """Delete the workspace's stored files (`<kind>/<schema>/…` in the default storage)."""
    removed = 0
    for kind in STORAGE_KINDS:
        folder = f"{kind}/{schema}"
        if not default_storage.exists(folder):
            continue
        _, files = default_storage.listdir(folder)
        for name in files:
            default_storage.delete(f"{folder}/{name}")
            removed += 1
        path = getattr(default_storage, "path", None)
        if path is not None:  # a file system: the emptied folder too
            try:
                os.rmdir(path(folder))
            except OSError:
                logger.warning("purge: could not remove the folder %s", folder)
    return removed


def tenants_due() -> list[Tenant]:
    """Workspaces scheduled for deletion whose grace period has ended."""
    connection.set_schema_to_public()
    return list(Tenant.objects.filter(status=Tenant.Status.DELETING, purge_after__lte=timezone.now()))
