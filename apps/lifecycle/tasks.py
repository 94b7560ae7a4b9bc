"""Celery tasks of the data lifecycle: thin, idempotent, each calls a service of this app."""

import logging

from celery import shared_task

from apps.lifecycle.erasure import erased_runs_forget
from apps.lifecycle.exports import export_active, export_requeue, export_run
from foundry.celery import TenantTask
from foundry.errors import ServiceError

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, name="lifecycle.export_tenant", bind=True, ignore_result=True, max_retries=None)
def export_tenant(self, schema_name: str, export_id: str) -> str:
    """Write a queued export's archive (apps/lifecycle/exports.py); a copy delivered twice is
    harmless. A copy finding the export's lock held asks again later while the export is still
    active: another copy is writing it, or a worker died writing it (the message came back at
    once, its lock lasts until it expires), and then this copy starts it over."""
    from django.conf import settings

    status = export_run(export_id=export_id)
    if status == "locked" and export_active(export_id):
        raise self.retry(countdown=max(1.0, settings.FOUNDRY_RUN_LOCK_SECONDS / 2))
    return status


@shared_task(base=TenantTask, name="lifecycle.exports_resume", ignore_result=True)
def exports_resume(schema_name: str) -> int:
    """The workspace was resumed: its queued exports, whose tasks it refused meanwhile, are queued
    again (a copy of one still in the broker is harmless); how many."""
    return export_requeue()


@shared_task(name="lifecycle.backup", ignore_result=True)
def backup() -> str:
    """Beat, daily: back up the whole database and rotate (apps/lifecycle/backup.py); the file's
    name, or "busy" when another backup runs (a copy the broker delivered again while the first,
    longer than its visibility timeout, still dumps)."""
    from pathlib import Path

    from django.conf import settings

    from apps.lifecycle.backup import BackupBusy, backup_run

    try:
        made, _deleted = backup_run(
            directory=Path(settings.FOUNDRY_BACKUP_DIR), keep=settings.FOUNDRY_BACKUP_KEEP, daily=True
        )
    except BackupBusy as busy:
        logger.info("backup skipped: %s", busy)
        return "busy"
    return made.path.name


@shared_task(name="lifecycle.purge_due", ignore_result=True)
def purge_due() -> int:
    """Beat, hourly: purge the workspaces whose deletion grace period has ended."""
    from apps.lifecycle.deletion import tenant_purge, tenants_due

    purged = 0
    for tenant in tenants_due():
        try:
            tenant_purge(tenant=tenant, actor="service:lifecycle")
        except ServiceError as refused:  # cancelled since it was listed, a legal hold: a refusal, not a fault
            logger.warning("purge of workspace %s refused (%s): %s", tenant.slug, refused.code, refused.message)
            continue
        except Exception:  # one workspace's failure stops no other
            logger.exception("purge of workspace %s failed; the next hourly pass tries it again", tenant.slug)
            continue
        purged += 1
    return purged


@shared_task(name="lifecycle.apply_retention", ignore_result=True)
def apply_retention(schema_names: list[str] | None = None) -> int:
    """Beat, nightly: queue the retention pass of every active workspace (or of those named);
    the number queued. Each runs as its own task, so one workspace's failure stops no other."""
    from apps.lifecycle.retention import retention_tenants

    tenants = retention_tenants()
    if isinstance(schema_names, str):  # one workspace named alone, not in a list
        schema_names = [schema_names]
    if schema_names is not None:
        tenants = tenants.filter(schema_name__in=schema_names)
    schemas = list(tenants.values_list("schema_name", flat=True))
    for schema_name in schemas:
        apply_retention_tenant.delay(schema_name)
    return len(schemas)


@shared_task(base=TenantTask, name="lifecycle.apply_retention_tenant", ignore_result=True)
def apply_retention_tenant(schema_name: str) -> dict:
    """One workspace's retention pass (apps/lifecycle/retention.py): what went, by kind; nothing
    when another pass of the workspace is running (a redelivered task, a command), which does
    the work: logged as such, not as a failure with its traceback."""
    from django.db import connection

    from apps.lifecycle.retention import retention_apply

    try:
        return retention_apply(tenant=connection.tenant)
    except ServiceError as refused:
        if refused.code != "retention_busy":
            raise
        logger.info("retention of %s: another pass is running; it does the work", connection.tenant.slug)
        return {}


@shared_task(
    base=TenantTask, name="lifecycle.erased_runs_forget", bind=True, acks_late=True, max_retries=720, ignore_result=True
)
def erased_runs_forget_task(self, schema_name: str, run_ids: list[str]) -> int:
    """Runs an erasure cancelled while their workers ran them: their checkpoints deleted once they
    have stopped (each stops before its next step), asked again every 5 s meanwhile (at most an
    hour); how many were forgotten."""
    left = erased_runs_forget(run_ids)
    if left:
        raise self.retry(countdown=5, args=[schema_name, left])
    return len(run_ids)
