from django.core.management.base import BaseCommand, CommandError

from apps.audit.models import PLATFORM
from apps.audit.services import audit_actor_erase, platform_actor_id
from apps.tenants.selectors import tenant_list, tenant_of_option
from foundry.db.text import UNSTORABLE


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
        if not actor_id.strip() or UNSTORABLE.search(actor_id):
            # No actor has it (a NUL, a stray byte of a shell that is not UTF-8): no query can carry it.
            raise CommandError(f"{actor_id!r} is not an actor id (such as user:42 or operator:3).")
        if platform and actor_id.startswith(("user:", "token:")) and "@tenant:" not in actor_id:
            # A member's or token's number restarts in every workspace: on the platform's chain they
            # are `user:42@tenant:7`, and sweeping every workspace for `user:42` would erase a
            # different person in each.
            raise CommandError(
                f"{actor_id} names a workspace's member or token: erase it with --tenant SLUG (its acts "
                "on the platform's chain go with it)."
            )
        chain = PLATFORM if platform else tenant_of_option(tenant).pk
        erased = audit_actor_erase(tenant_id=chain, actor_id=actor_id, actor="cli:audit_erase_actor")
        if platform and actor_id.startswith("operator:"):
            # An operator's acts on a workspace (provisioning it, scheduling its deletion, importing
            # it) name them on that workspace's chain too, under the same id.
            for each in tenant_list().values_list("pk", flat=True):
                erased |= audit_actor_erase(tenant_id=each, actor_id=actor_id, actor="cli:audit_erase_actor")
        else:
            # A member's acts on the platform's chain (their workspace's deletion scheduled or
            # cancelled) name them there too, under the id qualified with their workspace.
            qualified = platform_actor_id(chain, actor_id)
            erased |= audit_actor_erase(tenant_id=PLATFORM, actor_id=qualified, actor="cli:audit_erase_actor")
        if erased:
            self.stdout.write(f"Erased the personal data of {actor_id}; its events remain, under that id.")
        else:
            self.stdout.write(f"Nothing to erase for {actor_id} (unknown, or erased already).")
