from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.audit.history import history_actor
from apps.lifecycle.erasure import member_erase
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_get
from foundry.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Erase a person's personal data from a workspace (a data-subject request): the member is "
        "removed and their email and name are replaced by a pseudonym everywhere; the audit chain "
        "keeps its pseudonymous ids and still verifies."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")

    def handle(self, *args, slug, email, **options):
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        with schema_context(tenant.schema_name), history_actor("cli:erase_member"):
            try:
                erased = member_erase(actor="cli:erase_member", email=email)
            except ValidationError as e:
                raise CommandError(" ".join(e.messages)) from None
            except ServiceError as e:  # legal_hold
                raise CommandError(e.message) from None
        self.stdout.write(
            f"Erased {erased.actor_id or 'the person'} from {slug}: now {erased.pseudonym}; "
            f"{sum(erased.rows.values())} rows rewritten in {len(erased.rows)} tables"
            f"{', member removed' if erased.member_removed else ''}."
        )
