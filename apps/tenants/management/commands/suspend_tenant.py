from django.core.management.base import BaseCommand, CommandError

from apps.audit.history import history_actor
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tenants.services import tenant_suspend
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = "Suspend a tenant: every access to it is refused until it is resumed."
    change = staticmethod(tenant_suspend)

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        actor = f"cli:{self.__module__.rsplit('.', 1)[-1]}"
        try:
            with history_actor(actor):
                tenant = self.change(tenant=tenant, actor=actor)
        except ServiceError as e:
            raise CommandError(e.message) from None
        self.stdout.write(f"Tenant {tenant.slug} is {tenant.status}.")
