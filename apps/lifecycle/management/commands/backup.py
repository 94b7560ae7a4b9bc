from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.lifecycle.backup import BackupError, backup_run
from apps.tenants.selectors import tenant_of_option
from foundry.cli import file_path


class Command(BaseCommand):
    help = (
        "Back up the whole database (pg_dump -Fc), or one workspace: its schema and its rows of the "
        "public tables, into one file named by the UTC time; then keep only the newest --keep of that scope."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Only this workspace.")
        parser.add_argument("--dir", type=file_path, metavar="DIR", help="Where to write (default FOUNDRY_BACKUP_DIR).")
        parser.add_argument(
            "--keep", type=int, metavar="N", help="Backups of this scope to keep (default FOUNDRY_BACKUP_KEEP; 0: all)."
        )

    def handle(self, *args, tenant=None, dir=None, keep=None, **options):
        directory = dir or Path(settings.FOUNDRY_BACKUP_DIR)
        keep = settings.FOUNDRY_BACKUP_KEEP if keep is None else keep
        if keep < 0:
            raise CommandError("--keep must be 0 (keep all) or more.")
        # An empty slug (a script's unset variable) is no workspace: never the whole platform.
        found = None if tenant is None else tenant_of_option(tenant)
        try:
            made, deleted = backup_run(directory=directory, keep=keep, tenant=found, actor="cli:backup")
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{made.path} ({made.size} bytes, {made.seconds:.2f} s)")
        for path in deleted:
            self.stdout.write(f"deleted {path}")
