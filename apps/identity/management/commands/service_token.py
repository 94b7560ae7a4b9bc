from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.accounts.permissions import Role
from apps.audit.services import audit_record
from apps.identity.service_tokens import AUDIENCES, DEFAULT_TTL, MAX_TTL, service_token_issue
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tokens.models import Scope
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Print a short-lived platform service token for an internal caller of one tenant's API or MCP "
        "(the MCP stdio bridge, a worker, an HTTP tool calling Foundry). Verified with the keys at "
        "/.well-known/jwks.json; valid only on that tenant's host."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--service", required=True, help="Who calls, e.g. mcp-bridge (audited as service:NAME).")
        parser.add_argument("--audience", choices=AUDIENCES, default="foundry-api")
        parser.add_argument("--role", choices=[r for r in Role.values if r != Role.OWNER], default=Role.VIEWER)
        parser.add_argument("--scope", action="append", choices=Scope.values, metavar="SCOPE", default=[])
        parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"Seconds, at most {MAX_TTL}.")

    def handle(self, *args, slug, service, audience, role, scope, ttl, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        if not service.replace("-", "").replace("_", "").isalnum() or len(service) > 50:
            raise CommandError("--service is 1 to 50 letters, digits, - or _.")
        if not 0 < ttl <= MAX_TTL:
            raise CommandError(f"--ttl is 1 to {MAX_TTL} seconds.")
        try:
            token = service_token_issue(
                tenant_schema=tenant.schema_name,
                service=service,
                audience=audience,
                role=role,
                scopes=tuple(scope or [Scope.READ]),
                ttl=ttl,
            )
        except ServiceError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from None
        with schema_context(tenant.schema_name):
            audit_record(
                action="token.service_issued",
                actor="cli:service_token",
                target=("service", service),
                data={"audience": audience, "role": role, "scopes": sorted(set(scope or [Scope.READ])), "ttl": ttl},
            )
        self.stdout.write(token)
