from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.audit.history import history_actor
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from apps.tokens.models import ApiToken
from apps.tokens.services import token_revoke


class Command(BaseCommand):
    help = "Revoke an API token of a tenant, by its prefix. It stops working at once."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument(
            "prefix", help="the token's prefix, as the console shows it (af_<prefix>_…) or bare; or the whole token"
        )

    def handle(self, *args, tenant, prefix, **options):
        prefix = prefix.strip().removeprefix("af_").split("_", 1)[0].rstrip("…")
        try:
            target = tenant_get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {tenant!r}.") from None
        with schema_context(target.schema_name), history_actor("cli:revoke_api_token"):
            # Prefixes are ASCII: a stray byte of a shell (a lone surrogate) or a NUL names none.
            token = (
                ApiToken.objects.filter(prefix=prefix).first() if prefix.isascii() and "\x00" not in prefix else None
            )
            if token is None:
                raise CommandError(f"No token with prefix {prefix!r} in {tenant}.")
            token_revoke(actor="cli:revoke_api_token", token=token)
        self.stdout.write(f"Token {prefix} revoked.")
