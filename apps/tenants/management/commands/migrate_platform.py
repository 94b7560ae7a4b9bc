from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tenants.schemas import base_schema_prepare


class Command(BaseCommand):
    help = (
        "Migrate everything: the public schema, the base schema new tenants are cloned from, "
        "then every tenant schema. Use this, not migrate_schemas, so clones never go stale."
    )

    def add_arguments(self, parser):
        parser.add_argument("--executor", default="standard", choices=["standard", "multiprocessing"])

    def handle(self, *args, verbosity=1, executor="standard", **options):
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        base_schema_prepare(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity, executor=executor)
