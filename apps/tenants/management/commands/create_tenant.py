from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.accounts.services import member_invite_url
from apps.audit.history import history_actor
from apps.tenants.models import Tenant
from apps.tenants.selectors import base_url_of_option
from apps.tenants.services import tenant_provision


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "Provision a tenant: schema, domain and first owner."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", help="Without it, an invitation link is printed.")
        parser.add_argument("--plan", default=Tenant.Plan.FREE, choices=Tenant.Plan.values)
        parser.add_argument("--base-url", default="http://{domain}:8000/", help="Used to print the invitation link.")

    def handle(self, *args, slug, name, owner_email, owner_password, plan, base_url, **options):
        base_url_of_option(base_url)  # before anything is created: the link is printed once it exists
        try:
            with history_actor("cli:create_tenant"):
                result = tenant_provision(
                    slug=slug,
                    name=name,
                    owner_email=owner_email,
                    owner_password=owner_password,
                    plan=plan,
                    actor="cli:create_tenant",
                )
        except ValidationError as e:
            raise CommandError(validation_message(e)) from None
        domain = result.tenant.domains.get().domain
        self.stdout.write(f"Created tenant {result.tenant.slug} at {domain}")
        if not owner_password:
            with schema_context(result.tenant.schema_name):
                url = member_invite_url(user=result.owner, base_url=base_url.format(domain=domain))
            self.stdout.write(f"Owner invitation link: {url}")
