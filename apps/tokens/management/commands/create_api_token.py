from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.audit.history import history_actor
from apps.tenants.management.commands.create_tenant import validation_message
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tokens.services import token_expiry_parse, token_issue


class Command(BaseCommand):
    help = "Issue an API token for a tenant (automation, bootstrap). The token is printed once."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--role", required=True)
        parser.add_argument("--scopes", default="read", help="comma-separated: read,write,run,admin")
        parser.add_argument("--expires-in", default="", help='e.g. "30d", "12h"; default: no expiry')

    def handle(self, *args, tenant, name, role, scopes, expires_in, **options):
        try:
            target = tenant_get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {tenant!r}.") from None
        try:
            with schema_context(target.schema_name), history_actor("cli:create_api_token"):
                issued = token_issue(
                    actor="cli:create_api_token",
                    name=name,
                    role=role,
                    scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                    expires_in=token_expiry_parse(expires_in),
                )
        except ValidationError as e:
            raise CommandError(validation_message(e)) from None
        self.stderr.write(f"Token {issued.token.prefix} ({name}, {role}) for {tenant}; it is shown only now:")
        self.stdout.write(issued.plaintext)
