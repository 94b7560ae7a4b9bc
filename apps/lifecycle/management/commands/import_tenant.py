from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_tenants.utils import schema_context

from apps.accounts.services import owner_invites_issue
from apps.audit.history import history_actor
from apps.lifecycle.archive import KEYS_UNTRUSTED, NETWORKS_LEFT, ArchiveError, tenant_import
from apps.lifecycle.management.commands.export_tenant import ProgressBar
from apps.tenants.selectors import base_url_of_option
from foundry.cli import file_name


class Command(BaseCommand):
    help = "Create a new workspace from an archive made by export_tenant (docs/export.md)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=file_name)
        parser.add_argument("--slug", required=True, help="The new workspace's slug (its address).")
        parser.add_argument("--name", help="Its name (default: the archived workspace's).")
        parser.add_argument(
            "--keep-networks",
            action="store_true",
            help="Keep the private networks the archive lets the workspace's http tools reach (default: left out).",
        )
        parser.add_argument(
            "--base-url", default="http://{domain}:8000/", help="Used to print owners' invitation links."
        )

    def handle(self, *args, file, slug, name, base_url, keep_networks=False, **options):
        base_url_of_option(base_url)  # before anything is imported: the links are printed after
        line = ProgressBar(self.stderr, f"Importing into {slug}")
        try:
            with history_actor("cli:import_tenant"):
                tenant = tenant_import(
                    file,
                    slug=slug,
                    name=name,
                    actor="cli:import_tenant",
                    progress=line.update,
                    keep_networks=keep_networks,
                )
        except ArchiveError as e:
            where = f" (member {e.member})" if e.member else ""
            raise CommandError(f"{file}{where}: {e.message} [{e.code}] Nothing was imported.") from None
        finally:
            line.end()
        self.stdout.write(f"Imported {file} as {tenant.slug} (“{tenant.name}”).")
        if tenant.checkpoint_keys_untrusted:
            self.stderr.write(KEYS_UNTRUSTED.format(keys=", ".join(tenant.checkpoint_keys_untrusted)))
        if tenant.networks_left:
            self.stderr.write(NETWORKS_LEFT.format(networks=", ".join(tenant.networks_left), slug=tenant.slug))
        domain = tenant.primary_host
        with schema_context(tenant.schema_name), transaction.atomic(), history_actor("cli:import_tenant"):
            links = owner_invites_issue(actor="cli:import_tenant", base_url=base_url.format(domain=domain))
        for email, url in links:  # an admin's export: no owner can sign in to invite the others
            self.stdout.write(f"Owner invitation link for {email}: {url}")
