from django.core.management.base import BaseCommand, CommandError

from apps.audit.history import history_actor
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tenants.services import tenant_http_networks_set
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Show or change the private networks a tenant's agent http tools may reach "
        "(refused by default: private, loopback and link-local addresses)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--allow", action="append", default=[], metavar="CIDR", help="Admit this network.")
        parser.add_argument("--remove", action="append", default=[], metavar="CIDR", help="No longer admit it.")
        parser.add_argument("--clear", action="store_true", help="Admit no private network.")

    def handle(self, *args, slug, allow, remove, clear, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        if allow or remove or clear:
            # The change, applied to the list as it is when the tenant's row is locked.
            change = {"networks": allow} if clear else {"allow": allow, "remove": remove}
            try:
                with history_actor("cli:tenant_http_networks"):
                    tenant = tenant_http_networks_set(tenant=tenant, actor="cli:tenant_http_networks", **change)
            except ServiceError as exc:
                raise CommandError(exc.message) from None
        listed = ", ".join(tenant.http_allowed_networks) or "none (public addresses only)"
        self.stdout.write(f"Tenant {tenant.slug}: http tools may reach private networks: {listed}")
