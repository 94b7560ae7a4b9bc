from django.core.management.base import BaseCommand, CommandError

from apps.audit.history import history_actor
from apps.lifecycle.deletion import tenant_deletion_cancel, tenant_deletion_schedule, tenant_purge
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Delete a workspace in two steps: schedule (suspended at once, purged after the grace period; "
        "--cancel within it restores the status it had), then --purge (schema, every row with its id, Redis keys, "
        "files; one platform audit event remains)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        step = parser.add_mutually_exclusive_group()
        step.add_argument("--cancel", action="store_true", help="Cancel a scheduled deletion.")
        step.add_argument("--purge", action="store_true", help="Purge a workspace whose grace period has ended.")
        parser.add_argument("--grace-days", type=float, help="Days before it may be purged (default: the setting).")

    def handle(self, *args, slug, cancel=False, purge=False, grace_days=None, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        actor = "cli:delete_tenant"
        try:
            with history_actor(actor):
                if cancel:
                    tenant = tenant_deletion_cancel(tenant=tenant, actor=actor)
                    self.stdout.write(f"Deletion of {tenant.slug} cancelled; it is {tenant.status}.")
                elif purge:
                    purged = tenant_purge(tenant=tenant, actor=actor)
                    self.stdout.write(
                        f"Purged {purged.slug}: {purged.total} rows in {len(purged.rows)} tables, "
                        f"{purged.redis_keys} Redis keys, {purged.files} files."
                    )
                else:
                    tenant = tenant_deletion_schedule(tenant=tenant, actor=actor, grace_days=grace_days)
                    self.stdout.write(
                        f"{tenant.slug} is suspended and will be purged from {tenant.purge_after:%Y-%m-%d %H:%M} UTC."
                    )
        except ServiceError as e:
            raise CommandError(e.message) from None
