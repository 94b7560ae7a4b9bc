import logging

from django.core.management.base import BaseCommand, CommandError

from apps.lifecycle.retention import KINDS, retention_apply, retention_tenants
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from foundry.errors import ServiceError

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Apply the retention policy of one workspace or of every active one, as the nightly beat job "
        "does, printing what went per kind; --dry-run only counts what would go."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=None, metavar="SLUG", help="one workspace (default: every active one)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")

    def handle(self, *args, tenant, dry_run, **options):
        if tenant is None:
            tenants = list(retention_tenants())
        else:
            try:
                tenants = [tenant_get(slug=tenant)]
            except Tenant.DoesNotExist:
                raise CommandError(f"--tenant: no workspace {tenant[:63]!r}.") from None
        verb = "would delete" if dry_run else "deleted"
        busy, failed = [], []
        for one in tenants:
            try:
                counts = retention_apply(tenant=one, dry_run=dry_run, actor="cli:apply_retention")
            except ServiceError as e:  # a pass of this workspace is running: the others go on
                self.stderr.write(f"{one.slug}: {e.message}")
                busy.append(one.slug)
                continue
            except Exception as e:  # storage or database trouble in one workspace stops no other (as beat's tasks)
                logger.exception("retention pass of workspace %s failed", one.slug)
                self.stderr.write(f"{one.slug}: failed ({type(e).__name__}; logged), nothing more deleted there")
                failed.append(one.slug)
                continue
            shown = ", ".join(f"{kind} {counts[kind]}" for kind in KINDS)
            self.stdout.write(f"{one.slug}: {verb} {shown}")
        problems = [f"Not applied (a pass is running): {', '.join(busy)}."] if busy else []
        problems += [f"Failed (see the log): {', '.join(failed)}."] if failed else []
        if problems:
            raise CommandError(" ".join(problems))
