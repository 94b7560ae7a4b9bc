from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from apps.accounts.services import owner_invites_reissue
from apps.audit.history import history_actor
from apps.tenants.models import Tenant
from apps.tenants.selectors import base_url_of_option, tenant_get

ACTOR = "cli:invite_owners"


class Command(BaseCommand):
    help = (
        "Print a new invitation link for each owner of a workspace none of whose owners has joined "
        "(create_tenant's link lost or expired); the links sent before stop working. Refused once an "
        "owner has joined: the workspace's owners send links themselves."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--base-url", default="http://{domain}:8000/", help="Used to print the links.")

    def handle(self, *args, slug, base_url, **options):
        base_url_of_option(base_url)
        try:
            tenant = tenant_get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        with schema_context(tenant.schema_name), history_actor(ACTOR):
            try:
                links = owner_invites_reissue(actor=ACTOR, base_url=base_url.format(domain=tenant.primary_host))
            except ValidationError as e:
                raise CommandError(" ".join(e.messages)) from None
        if not links:
            raise CommandError(f"{slug} has no active owner waiting for an invitation.")
        for email, url in links:
            self.stdout.write(f"Owner invitation link for {email}: {url}")
