"""Export jobs: a workspace's archive (apps/lifecycle/archive.py) made by a Celery worker, with
progress, into the default storage, downloadable through an expiring signed link (docs/export-jobs.md).

- One export at a time per workspace: a start while one is queued or running is refused
  (`export_in_progress`), unless that one was lost (its task never ran, or its worker died).
- The worker holds a Redis lock (apps/runs/locks.py) while it works: a copy of the task
  delivered again finds the lock held and leaves; a running export whose lock expired was lost.
- The archive is written to a temporary file, then saved as `exports/<schema>/<id>.zip` (the
  prefix purge deletes). Its SHA-256 and size are recorded; the link ends at `expires_at`.
- A download needs the signed link (export id, schema, expiry) AND an owner or admin of the
  workspace the link was made for: a link shown on another workspace's host is a 404.
"""

import hashlib
import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, connections, transaction
from django.db.models import F, QuerySet
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from apps.accounts.permissions import Permission
from apps.accounts.services import allowed_now
from apps.audit.models import Outcome
from apps.audit.services import audit_record
from apps.catalog.services import author_of
from apps.lifecycle.archive import ArchiveError, tenant_export, tenant_exported_record
from apps.lifecycle.models import Export
from apps.runs.locks import RunLock
from apps.tenants.models import Tenant
from foundry.cache_values import cache_or
from foundry.db.locks import xact_lock
from foundry.errors import ServiceError

logger = logging.getLogger(__name__)

ACTIVE = (Export.Status.QUEUED, Export.Status.RUNNING)
# A queued export whose task has not started in this long lost it (the broker was away).
QUEUED_LOST_AFTER = timedelta(minutes=30)
MAX_ATTEMPTS = 3  # workers an export may lose before it is given up (`export_lost`)
_LOST_EACH_TIME = (
    "The export's worker stopped before it finished, {attempts} times (a workspace too large for a "
    "worker's memory, say). Start another, or ask an operator."
)
PROGRESS_EVERY_SECONDS = 0.5
ARCHIVE_SUFFIX = ".zip"  # the archive is a zip file (apps/lifecycle/archive.py)
_LINK_SALT = "lifecycle.export.download"
_WORKER = "service:lifecycle.export"


def export_storage_prefix(schema_name: str) -> str:
    """Where a workspace's archives are kept in the default storage (purge deletes it whole)."""
    return f"exports/{schema_name}/"


def _created_by(actor: Any) -> str:
    """A member by email; an API token by its name and prefix."""
    name, email = author_of(actor)
    return (email if getattr(actor, "token", None) is None and email else name)[:255]


def _owner(actor: Any) -> bool:
    """Whether the export's archive may hold members' password hashes: an owner (or a token with an
    owner's standing) started it, or a platform operator (as `manage.py export_tenant` does). An
    admin may export the workspace, but not crack an owner's password offline from it and sign
    in as them."""
    if getattr(actor, "is_staff", False):  # an operator: a user of the public schema, never a member
        return True
    has_permission = getattr(actor, "has_permission", None)
    return bool(has_permission and has_permission(Permission.OWNERS_MANAGE))


def export_downloadable_by(export: Export, actor: Any) -> bool:
    """Whether `actor` may download the export: an archive holding members' password hashes (an
    owner's export) only by an owner, as only an owner may make one."""
    return not export.password_hashes or _owner(actor)


def _lock(schema_name: str, export_id) -> RunLock:
    return RunLock(schema_name, f"export:{export_id}")


# --- selectors ------------------------------------------------------------------------------


def exports_delete(exports: QuerySet[Export], *, batch_size: int = 500) -> int:
    """Delete `exports` (of the connection's workspace), batch by batch, each one's file first: no
    archive outlives its row — also the one a worker stored and died before its row named it."""
    deleted = 0
    exports = exports.order_by("pk")
    schema = connection.schema_name
    while batch := list(exports.values_list("pk", "file")[:batch_size]):
        for pk, name in batch:
            for stored in {name, _archive_name(schema, pk)} - {""}:
                default_storage.delete(stored)
        with transaction.atomic():
            deleted += Export.objects.filter(pk__in=[pk for pk, _ in batch]).delete()[0]
    return deleted


def export_list(*, limit: int = 50) -> QuerySet[Export]:
    """The workspace's exports, newest first."""
    return Export.objects.order_by("-created_at")[:limit]


def export_get(*, export_id) -> Export:
    try:
        export = Export.objects.filter(pk=uuid.UUID(str(export_id))).first()
    except ValueError:
        export = None
    if export is None:
        raise ServiceError("export_not_found", "There is no export with this id.", status=404)
    return export


def export_error(export: Export) -> tuple[str, str]:
    """(code, message) of a failed export; the stored text is `code: message`."""
    code, _, message = export.error.partition(": ")
    return (code, message) if message else ("export_failed", export.error)


def export_link_expired(export: Export, *, now: datetime | None = None) -> bool:
    return export.expires_at is not None and export.expires_at <= (now or timezone.now())


# --- starting -------------------------------------------------------------------------------


def _lost(export: Export, now: datetime) -> bool:
    """Whether an active export will never finish: its task never came, or its worker died."""
    if export.status == Export.Status.QUEUED:  # and no worker has just taken it (its lock, then running)
        return export.created_at < now - QUEUED_LOST_AFTER and not _held(connection.schema_name, export.pk)
    return not _held(connection.schema_name, export.pk)


def _held(schema: str, export_id) -> bool:
    """Whether a worker holds the export's lock; when Redis cannot say, as if one did (an export
    taken for lost would be started a second time beside one that is running)."""
    return cache_or(lambda: _lock(schema, export_id).held, True)


def _fail(export: Export, code: str, message: str) -> None:
    export.status = Export.Status.FAILED
    export.error = f"{code}: {message}"[:500]
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "error", "finished_at"])


LOST_MESSAGE = "The export stopped before it finished (its worker was lost). Start another."


def exports_lost_fail(exports: list[Export]) -> int:
    """Fail (`export_lost`) those of `exports` (read by the caller) that will never finish —
    queued past QUEUED_LOST_AFTER with no task come (the broker was away), or running with no
    worker holding them — as the next start would: the export page polls while one is under way,
    and would poll for ever. Judged first as read, so a poll takes no lock while none is lost;
    then again under the row's lock. Those another transaction holds (a start, an erasure) are
    left to it."""
    now, failed = timezone.now(), 0
    lost = [export.pk for export in exports if export.status in ACTIVE and _lost(export, now)]
    if not lost:
        return 0
    with transaction.atomic():
        for active in Export.objects.select_for_update(skip_locked=True).filter(pk__in=lost, status__in=ACTIVE):
            if _lost(active, now):
                _export_failed(active, None, "export_lost", LOST_MESSAGE)
                failed += 1
    return failed


def exports_held() -> None:
    """Hold the workspace's exports until the transaction ends: no export starts meanwhile (an
    erasure holds it, so an export started while it runs reads the data after it)."""
    xact_lock(f"lifecycle.export:{connection.schema_name}")


@transaction.atomic
def export_start(*, actor: Any, request: HttpRequest | None = None) -> Export:
    """Queue an export of this workspace (the connection's schema); 409 while one is going on."""
    schema = connection.schema_name
    exports_held()  # two starts at once: the second waits, then sees the first
    now = timezone.now()
    for active in Export.objects.select_for_update().filter(status__in=ACTIVE):
        if not _lost(active, now):
            raise ServiceError(
                "export_in_progress",
                "An export of this workspace is already under way; wait for it to finish.",
                status=409,
            )
        _export_failed(active, None, "export_lost", LOST_MESSAGE)
    # As they stand now, not as their request began: a member demoted meanwhile exports nothing,
    # and password hashes go only to one who is an owner now.
    current = allowed_now(actor, Permission.SETTINGS_MANAGE)
    export = Export.objects.create(created_by=_created_by(actor), password_hashes=_owner(current))
    audit_record(action="export.started", actor=actor, target=export, request=request)
    from apps.lifecycle.tasks import export_tenant

    # robust: the job is committed; if the broker is away it stays queued and counts as lost
    # after QUEUED_LOST_AFTER, so the caller is not told that a recorded start failed.
    transaction.on_commit(lambda: export_tenant.apply_async(args=[schema, str(export.pk)]), robust=True)
    return export


def export_requeue() -> int:
    """Queue the task of every export of the workspace (the connection's schema) that waits for
    one again: queued, or running with no worker holding it (its worker died, and the task's
    redelivery came while the workspace was suspended, which refused it for good)."""
    from apps.lifecycle.tasks import export_tenant

    schema = connection.schema_name
    active = Export.objects.filter(status__in=[Export.Status.QUEUED, Export.Status.RUNNING]).values_list("pk", "status")
    queued = [str(pk) for pk, status in active if status == Export.Status.QUEUED or not _held(schema, pk)]
    for export_id in queued:
        export_tenant.apply_async(args=[schema, export_id])
    return len(queued)


# --- running (the Celery task) --------------------------------------------------------------


class _Progress:
    """`progress(done, total)` for the archive writer, saved at most every PROGRESS_EVERY_SECONDS.

    Written on a connection of its own, in autocommit: the export reads the workspace in one
    long transaction (a consistent snapshot), whose writes nobody would see until it ends.
    """

    def __init__(self, schema_name: str, export_id) -> None:
        self._table = f"{connection.ops.quote_name(schema_name)}.{connection.ops.quote_name(Export._meta.db_table)}"
        self._export_id = export_id
        self._last = 0.0
        self._connection = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_SECONDS and done < total:
            return
        self._last = now
        if self._connection is None:
            self._connection = connections.create_connection("default")
        with self._connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self._table} SET rows_done = %s, rows_total = %s WHERE id = %s",  # noqa: S608 — quoted names
                [done, total, self._export_id],
            )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _archive_name(schema_name: str, export_id) -> str:
    """Where an export's archive is stored: always this name (its row's `file` once it succeeded)."""
    return f"{export_storage_prefix(schema_name)}{export_id}{ARCHIVE_SUFFIX}"


def _sha256(handle) -> str:
    handle.seek(0)
    return hashlib.file_digest(handle, "sha256").hexdigest()


def export_active(export_id: str) -> bool:
    """Whether the export (of the connection's workspace) is still queued or running."""
    return Export.objects.filter(pk=export_id, status__in=ACTIVE).exists()


def export_run(*, export_id: str) -> str:
    """Make the archive of a queued export (the connection is on its workspace); its final status.

    Safe to deliver twice: a copy finding the export's lock held, or the export no longer
    active, does nothing.
    """
    schema = connection.schema_name
    lock = _lock(schema, export_id)
    if not lock.acquire():
        return "locked"
    try:
        export = Export.objects.filter(pk=export_id, status__in=ACTIVE).first()
        if export is None:
            return "gone"
        if export.attempts >= MAX_ATTEMPTS:
            # Each worker that took it up was lost (as a task whose archive outgrows a worker's
            # memory would be, every time): given up, not handed to the next worker for ever.
            _export_failed(export, None, "export_lost", _LOST_EACH_TIME.format(attempts=export.attempts))
            return export.status
        # Only while still active: one failed as lost meanwhile (its task came late) stays failed.
        taken = Export.objects.filter(pk=export.pk, status__in=ACTIVE).update(
            status=Export.Status.RUNNING, rows_done=0, error="", attempts=F("attempts") + 1
        )
        if not taken:
            return "gone"
        return _export_write(schema, Export.objects.get(pk=export_id))  # its `attempts`: this copy's
    finally:
        lock.release()


def _superseded(export: Export) -> str | None:
    """Hold the job's row until the transaction ends; the status it has, if it is no longer this
    copy's to finish: another copy took it up since (this one's lock expired under it, as under a
    stalled worker or a Redis failover, and the broker delivered the task again), or it ended."""
    current = Export.objects.select_for_update().filter(pk=export.pk).values_list("status", "attempts").first()
    if current is None:
        return "gone"
    status, attempts = current
    if status != Export.Status.RUNNING or attempts != export.attempts:
        logger.info(
            "export %s: superseded (%s; this copy's attempt %d, now %d)", export.pk, status, export.attempts, attempts
        )
        return status
    return None


def _export_write(schema: str, export: Export) -> str:
    progress = _Progress(schema, export.pk)
    name = _archive_name(schema, export.pk)
    saved = None
    try:
        # A file without a name (O_TMPFILE): a worker killed mid-archive leaves none of the
        # workspace's data behind on its disk; NamedTemporaryFile's is only removed on close.
        with tempfile.TemporaryFile(prefix="foundry-export-", suffix=".tmp") as out:
            tenant = Tenant.objects.get(schema_name=schema)
            manifest = tenant_export(  # recorded once stored
                tenant, out, progress=progress, record=False, password_hashes=export.password_hashes
            )
            out.flush()
            sha256 = _sha256(out)
            out.seek(0)
            # Saved while the workspace's row is held (FOR KEY SHARE; a purge locks it FOR UPDATE
            # before deleting its rows, then its files): a purge that began meanwhile leaves no
            # archive of the workspace behind, one that begins afterwards deletes it with the rest.
            with transaction.atomic():
                if not _workspace_held(schema):
                    logger.info("export %s of %s dropped: the workspace was purged meanwhile", export.pk, schema)
                    return "gone"
                if superseded := _superseded(export):
                    return superseded  # the archive stored under `name` is the other copy's
                default_storage.delete(name)  # a retried task's leftover, if any: never a renamed copy
                saved = default_storage.save(name, File(out, name=name))
                size = default_storage.size(saved)
                _export_succeeded(export, tenant, name=saved, size=size, sha256=sha256, manifest=manifest)
    except Exception as e:
        if not Tenant.objects.filter(schema_name=schema).exists():
            # Purged while the archive was read (the purge's DROP SCHEMA waits for the reading to
            # end, then the next statement finds no table): no job row left to fail, nothing to log.
            logger.info("export %s of %s dropped: the workspace was purged meanwhile", export.pk, schema)
            return "gone"
        with transaction.atomic():
            if superseded := _superseded(export):
                logger.info("export %s: this copy failed after it was superseded", export.pk, exc_info=True)
                return superseded  # neither the job nor the other copy's archive is this copy's to fail
        if isinstance(e, ArchiveError):
            _export_failed(export, saved, e.code, e.message)
        else:
            logger.exception("export %s of %s failed", export.pk, schema)
            _export_failed(export, saved, "export_failed", "The export failed on our side; it has been logged.")
        return export.status
    finally:
        progress.close()
    return export.status


def _workspace_held(schema: str) -> bool:
    """Lock the workspace's row against a purge until the transaction ends; False if it is gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM public.tenants_tenant WHERE schema_name = %s FOR KEY SHARE", [schema])
        return cursor.fetchone() is not None


@transaction.atomic
def _export_succeeded(export: Export, tenant: Tenant, *, name: str, size: int, sha256: str, manifest: dict) -> None:
    current = Export.objects.select_for_update().filter(pk=export.pk).first()
    if current is None or current.status != Export.Status.RUNNING:
        default_storage.delete(name)  # given up as lost (or deleted) meanwhile: that answer stands
        return
    # The data left the platform only now, with the archive stored and the export succeeded (a
    # failed or lost job recorded it all the same, written by the archive before its storage).
    tenant_exported_record(tenant, manifest, _WORKER)  # the job's worker, as its export.finished
    now = timezone.now()
    export.status = Export.Status.SUCCEEDED
    export.rows_done = export.rows_total = manifest["rows"]
    export.file, export.size, export.sha256 = name, size, sha256
    export.finished_at = now
    export.expires_at = now + timedelta(seconds=settings.FOUNDRY_EXPORT_LINK_SECONDS)
    export.save(
        update_fields=["status", "file", "size", "sha256", "rows_done", "rows_total", "finished_at", "expires_at"]
    )
    audit_record(
        action="export.finished",
        actor=_WORKER,
        target=export,
        data={"status": export.status, "rows": export.rows_done, "size": size, "sha256": sha256},
    )


@transaction.atomic
def _export_failed(export: Export, saved: str | None, code: str, message: str) -> None:
    # Also what a worker that died stored (or was storing) before its row named it: it is given up
    # as lost here, and its archive goes with it. Storage that fails here (the very failure being
    # recorded, often) does not keep the job from being marked failed; retention tries again.
    name = saved or _archive_name(connection.schema_name, export.pk)
    try:
        default_storage.delete(name)
    except Exception:  # any storage backend's error
        logger.warning("export %s: its archive %s could not be deleted", export.pk, name, exc_info=True)
    _fail(export, code, message)
    audit_record(
        action="export.finished",
        actor=_WORKER,
        target=export,
        data={"status": export.status, "error": code},
        outcome=Outcome.FAILURE,
    )


# --- the download link ----------------------------------------------------------------------


def export_link_signature(export: Export) -> str:
    """The signed part of the export's download link: its id, workspace and expiry."""
    expires = int(export.expires_at.timestamp())
    return signing.dumps([str(export.pk), connection.schema_name, expires], salt=_LINK_SALT, compress=False)


def export_for_download(*, export_id, signature: str | None, actor: Any = None, request=None) -> Export:
    """The export a download link names, once the link is proven to be this workspace's, for
    this export, and not expired; records the download (`export.downloaded`)."""
    export = export_get(export_id=export_id)  # none with this id here: 404, whatever the link
    try:
        payload = signing.loads(signature or "", salt=_LINK_SALT)
    except signing.BadSignature:
        payload = None
    if not (isinstance(payload, list) and len(payload) == 3 and isinstance(payload[2], int)):
        # The whole workspace's data is behind such a link: a forged one is a security event.
        raise _download_refused(export, actor, request, "link_invalid", "This download link is not valid.")
    link_export, link_schema, link_expires = payload
    if link_schema != connection.schema_name or link_export != str(export_id).lower():
        raise ServiceError("export_not_found", "There is no export with this id.", status=404)
    if not export_downloadable_by(export, actor):  # an admin holding an owner's link
        message = "This export holds members' password hashes: only an owner may download it."
        raise _download_refused(export, actor, request, "export_owners_only", message, reason="owners_only")
    if export.status != Export.Status.SUCCEEDED or not export.file:
        raise ServiceError("export_not_found", "There is no export with this id.", status=404)
    if export.file != _archive_name(connection.schema_name, export.pk):  # a row naming another's file
        raise ServiceError("export_not_found", "There is no export with this id.", status=404)
    now = timezone.now()
    if datetime.fromtimestamp(link_expires, tz=UTC) <= now or export_link_expired(export, now=now):
        raise ServiceError("export_expired", "This download link has expired; start a new export.", status=410)
    if not default_storage.exists(export.file):
        raise ServiceError("export_expired", "This export's archive has been deleted; start a new export.", status=410)
    if request is None or request.method != "HEAD":  # a HEAD (a link checker) takes nothing away
        audit_record(action="export.downloaded", actor=actor, target=export, request=request)
    return export


def _download_refused(export: Export, actor, request, code: str, message: str, *, reason: str = "") -> ServiceError:
    """A refused download, audited (`export.download_refused`, denied): the error to raise."""
    audit_record(
        action="export.download_refused",
        actor=actor,
        target=export,
        data={"reason": reason or code},
        outcome=Outcome.DENIED,
        request=request,
    )
    return ServiceError(code, message, status=403)


def export_download_url(export: Export, *, url_name: str = "api:export_download") -> str:
    """The download link's path (the API's, or the console's `lifecycle:export_download`)."""
    return f"{reverse(url_name, args=[export.pk])}?{urlencode({'signature': export_link_signature(export)})}"


def export_file_response(export: Export) -> FileResponse:
    """The archive, streamed as an attachment."""
    name = f"{connection.tenant.slug}-{export.created_at:%Y%m%d-%H%M%S}{ARCHIVE_SUFFIX}"
    response = FileResponse(
        default_storage.open(export.file, "rb"),
        as_attachment=True,
        filename=name,
        content_type="application/octet-stream",
    )
    response["Cache-Control"] = "no-store"
    response["X-Content-SHA256"] = export.sha256
    return response
