from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.lifecycle.backup import (
    DATABASE,
    BackupError,
    backup_open,
    backup_restore_database,
    backup_restore_tenant,
    secrets_undecryptable,
)


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup`, after checking every member's checksum. A whole-database "
        "backup goes into a new database (--create) or an empty one; a workspace's backup goes into this "
        "database, where that workspace must not exist."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--database", metavar="NAME", help="Whole-database backups: the database to restore into.")
        parser.add_argument("--create", action="store_true", help="Create that database first (it must not exist).")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Restore over a database that is not empty, dropping the objects the backup holds first.",
        )
        parser.add_argument("--tenant", metavar="SLUG", help="Refuse the file unless it is this workspace's backup.")

    def handle(self, *args, file, database=None, create=False, force=False, tenant=None, **options):
        try:
            backup = backup_open(file)
            if tenant is not None and (backup.tenant or {}).get("slug") != tenant:
                raise BackupError(f"{file}: not a backup of workspace {tenant!r}.")
            if backup.scope == DATABASE:
                target = database or connection.settings_dict["NAME"]
                backup_restore_database(backup=backup, database=target, create=create, force=force, actor="cli:restore")
                self.stdout.write(f"Restored {file} into database {target}.")
                self.stdout.write(
                    "Its secrets (provider keys, SSO client secrets, sink secrets) open only with the "
                    "FOUNDRY_ENCRYPTION_KEYS of the time it was made: run `manage.py rotate_encryption_keys` "
                    "against it, which names any that no configured key decrypts."
                )
                return
            if database or create or force:
                raise BackupError(f"{file}: a workspace's backup is restored into this database (no --database).")
            outcome = backup_restore_tenant(backup=backup, actor="cli:restore")
        except BackupError as error:
            raise CommandError(str(error)) from None
        restored = outcome.tenant
        self.stdout.write(f"Restored workspace {restored.slug} (id {restored.pk}) from {file}.")
        if erased := outcome.reapplied.erased:
            self.stdout.write(
                f"Made again {len(erased)} erasure(s) of a person made since the backup ({', '.join(erased)})."
            )
        if failed := outcome.reapplied.failed:
            self.stderr.write(
                f"Warning: the erasure of {'; '.join(failed)} made since the backup could not be made again: once "
                f"that is resolved, erase them again by their address (`manage.py erase_member {restored.slug} EMAIL`)."
            )
        if held := outcome.reapplied.held:
            self.stderr.write(
                f"Warning: its audit trail is on legal hold (as it was when the backup was made), so the erasure of "
                f"{', '.join(held)} made since could not be made again: once its owners lift the hold, erase them "
                f"again by their address (`manage.py erase_member {restored.slug} EMAIL`; `user:N` is the member of "
                "id N, the audit trail's actor table names the others)."
            )
        closed = secrets_undecryptable(restored)
        if closed:
            self.stderr.write(
                f"Warning: no key in FOUNDRY_ENCRYPTION_KEYS decrypts {len(closed)} of its secrets "
                f"({', '.join(closed)}): they were encrypted under a key since removed. Put that key back in "
                "FOUNDRY_ENCRYPTION_KEYS (then run `manage.py rotate_encryption_keys`), or set them anew in the "
                "workspace's settings."
            )
