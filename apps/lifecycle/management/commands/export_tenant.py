import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.history import history_actor
from apps.lifecycle.archive import tenant_export
from apps.tenants.models import Tenant


class ProgressLine:
    """A progress line rewritten in place on a terminal (`\r`); on anything else, nothing."""

    def __init__(self, stream, label: str, *, every: float = 0.2):
        self.stream, self.label, self.every = stream, label, every
        self.shown, self.last = False, 0.0
        self.tty = stream.isatty()

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.tty or (now - self.last < self.every and done < total):
            return
        self.last = now
        share = f" ({done / total:.0%})" if total else ""
        self.stream.write(f"\r{self.label}: {done:,} of {total:,} rows{share}", ending="")
        self.stream.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            self.stream.write("")


class Command(BaseCommand):
    help = "Export a workspace's data to one archive file (docs/export.md)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file", help="Where to write the archive (a .zip file; not overwritten).")

    def handle(self, *args, slug, file, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None or tenant.is_public:
            raise CommandError(f"There is no workspace {slug!r}.")
        path = Path(file)
        if path.exists():
            raise CommandError(f"{path} already exists; choose another file.")
        partial = path.with_name(path.name + ".part")
        line = ProgressLine(self.stderr, f"Exporting {slug}")
        try:
            with partial.open("xb") as out, history_actor("cli:export_tenant"):
                manifest = tenant_export(tenant, out, progress=line.update)
            os.replace(partial, path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise CommandError(f"{path}: cannot write the archive ({e.strerror}).") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            line.end()
        self.stdout.write(
            f"Exported {slug} to {path}: {manifest['rows']:,} rows in {len(manifest['members'])} tables"
            f" ({path.stat().st_size:,} bytes)."
        )
        if manifest["secrets_omitted"]:
            self.stdout.write("Not exported (re-enter after import): " + ", ".join(manifest["secrets_omitted"]) + ".")
