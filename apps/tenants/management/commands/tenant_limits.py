from django.core.management.base import BaseCommand, CommandError

from apps.audit.history import history_actor
from apps.tenants.limits import LIMIT_NAMES, limits_for
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tenants.services import tenant_limits_set
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = "Show or override a tenant's limits (its plan's values otherwise): docs/limits.md."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        for name in LIMIT_NAMES:
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N", help=f"Override {name}.")
        parser.add_argument("--clear", action="store_true", help="Drop every override (then apply those given).")

    def handle(self, *args, slug, clear, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        overrides = dict.fromkeys(LIMIT_NAMES) if clear else {}
        overrides.update({name: options[name] for name in LIMIT_NAMES if options[name] is not None})
        if overrides:
            try:
                with history_actor("cli:tenant_limits"):
                    tenant = tenant_limits_set(tenant=tenant, overrides=overrides, actor="cli:tenant_limits")
            except ServiceError as exc:
                raise CommandError(exc.message) from None
        limits = limits_for(tenant)
        self.stdout.write(f"Tenant {tenant.slug}, plan {limits.plan}:")
        for name in LIMIT_NAMES:
            value = getattr(limits, name)
            shown = "unlimited" if value is None else f"{value:,}"
            source = "override" if name in limits.overridden else "plan"
            self.stdout.write(f"  {name}: {shown} ({source})")
