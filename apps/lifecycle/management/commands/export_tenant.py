import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from apps.audit.history import history_actor
from apps.audit.models import PLATFORM
from apps.audit.services import audit_record
from apps.lifecycle.archive import tenant_export, tenant_exported_record
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from foundry.cli import file_name


class ProgressBar:
    """tqdm's bar on a terminal (nothing when the output is not one), fed with the archive's
    `progress(done_rows, total_rows)` calls."""

    def __init__(self, stream, label: str):
        self.stream, self.label = getattr(stream, "_out", stream), label  # under Django's OutputWrapper
        self.bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit=" rows", unit_scale=True, file=self.stream, disable=None)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()


ACTOR = "cli:export_tenant"


class Command(BaseCommand):
    help = "Export a workspace's data to one archive file (docs/export.md)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file", type=file_name, help="Where to write the archive (a .zip file; not overwritten).")

    def handle(self, *args, slug, file, **options):
        try:
            tenant = tenant_get(slug=slug)  # text no slug holds (a stray byte, a NUL) included
        except Tenant.DoesNotExist:
            raise CommandError(f"There is no workspace {slug!r}.") from None
        path = Path(file)
        if path.exists():
            raise CommandError(f"{path} already exists; choose another file.")
        line = ProgressBar(self.stderr, f"Exporting {slug}")
        partial = None
        try:
            # A part file of this command's own (another export to the same FILE has its own), put
            # in place by a link, which refuses a FILE that appeared meanwhile: never overwritten.
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            partial = Path(name)
            with os.fdopen(handle, "wb") as out, history_actor(ACTOR):
                manifest = tenant_export(tenant, out, progress=line.update, actor=ACTOR, record=False)
            os.link(partial, path)
        except FileExistsError:
            raise CommandError(f"{path} appeared while exporting; the archive was not written there.") from None
        except OSError as e:
            raise CommandError(f"{path}: cannot write the archive ({e.strerror}).") from None
        finally:
            if partial is not None:
                partial.unlink(missing_ok=True)
            line.end()
        # The data left the platform only now, with the archive in place (recorded before, an
        # archive that could not be put there was in the workspace's trail as exported): in the
        # workspace's chain and, an operator having taken it out, the platform's.
        data = {"rows": manifest["rows"], "members": len(manifest["members"]), "file": path.name}
        try:
            with transaction.atomic():
                tenant_exported_record(tenant, manifest, ACTOR)
                audit_record(action="tenant.exported", actor=ACTOR, target=tenant, data=data, chain=PLATFORM)
        except BaseException:
            path.unlink(missing_ok=True)  # not recorded: not left either
            raise
        self.stdout.write(
            f"Exported {slug} to {path}: {manifest['rows']:,} rows in {len(manifest['members'])} tables"
            f" ({path.stat().st_size:,} bytes)."
        )
        if manifest["secrets_omitted"]:
            self.stdout.write("Not exported (re-enter after import): " + ", ".join(manifest["secrets_omitted"]) + ".")
