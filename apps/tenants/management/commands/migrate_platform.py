from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tenants.schemas import base_schema_prepare, clone_function_install
from foundry.db.roles import app_role_grant, as_owner, definer_functions_restrict


class Command(BaseCommand):
    help = (
        "Migrate everything: the public schema, the base schema new tenants are cloned from, "
        "then every tenant schema. Use this, not migrate_schemas, so clones never go stale. "
        "The public schema as the owner role (FOUNDRY_DB_OWNER_USER) when there is one; the base "
        "and tenant schemas, which the app role owns, as the app role (DATABASE_URL's)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--executor", default="standard", choices=["standard", "multiprocessing"])

    def handle(self, *args, verbosity=1, executor="standard", **options):
        with as_owner():
            call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
            app_role_grant()
            definer_functions_restrict()
            clone_function_install()
        # Logged in as the app role: never run what the app role owns as the owner (roles.py).
        base_schema_prepare(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity, executor=executor)
