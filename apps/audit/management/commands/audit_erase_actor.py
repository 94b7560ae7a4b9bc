from django.core.management.base import BaseCommand

from apps.audit.models import PLATFORM
from apps.audit.services import audit_actor_erase, platform_actor_id
from apps.tenants.selectors import tenant_of_option


class Command(BaseCommand):
    help = (
        "Erase an actor's personal data (name, email) from the audit trail's actor table, for a "
        "data-subject request. Events keep the pseudonymous id (e.g. user:42) and still verify."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", metavar="SLUG", help="The tenant whose chain names the actor.")
        which.add_argument("--platform", action="store_true", help="The platform's chain (operators).")
        parser.add_argument("actor_id", help="The pseudonymous id, e.g. user:42 or operator:3.")

    def handle(self, *args, tenant=None, platform=False, actor_id, **options):
        chain = PLATFORM if platform else tenant_of_option(tenant).pk
        erased = audit_actor_erase(tenant_id=chain, actor_id=actor_id, actor="cli:audit_erase_actor")
        if not platform:
            # A member's acts on the platform's chain (their workspace's deletion scheduled or
            # cancelled) name them there too, under the id qualified with their workspace.
            qualified = platform_actor_id(chain, actor_id)
            erased |= audit_actor_erase(tenant_id=PLATFORM, actor_id=qualified, actor="cli:audit_erase_actor")
        if erased:
            self.stdout.write(f"Erased the personal data of {actor_id}; its events remain, under that id.")
        else:
            self.stdout.write(f"Nothing to erase for {actor_id} (unknown, or erased already).")
