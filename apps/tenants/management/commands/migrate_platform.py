from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tenants.schemas import base_schema_prepare
from foundry.db.roles import app_role_grant, as_owner, tenant_schemas_as_app


class Command(BaseCommand):
    help = (
        "Migrate everything: the public schema, the base schema new tenants are cloned from, "
        "then every tenant schema. Use this, not migrate_schemas, so clones never go stale. "
        "Connects as the owner role (FOUNDRY_DB_OWNER_USER) when there is one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--executor", default="standard", choices=["standard", "multiprocessing"])

    def handle(self, *args, verbosity=1, executor="standard", **options):
        with as_owner():
            call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
            app_role_grant()
            base_schema_prepare(verbosity=verbosity)
            with tenant_schemas_as_app():
                call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity, executor=executor)
