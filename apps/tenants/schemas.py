"""Creating tenant schemas: by cloning the prepared base schema, or by running migrations.

Cloning copies TENANT_BASE_SCHEMA *with its rows*, which include django_migrations, content
types and permissions; so the clone is already a fully migrated schema and needs no
fake-migration pass (the step that makes django-tenants' own cloning slow as migrations grow).
`base_schema_prepare` keeps the base schema migrated; `migrate_platform` runs it on every deploy.
"""

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.clone import CloneSchema
from django_tenants.utils import quote_schema_name, schema_exists


def base_schema_prepare(*, verbosity: int = 0) -> None:
    """Create (if missing) and migrate the schema new tenants are cloned from."""
    base = settings.TENANT_BASE_SCHEMA
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(base)}")
    call_command("migrate_schemas", schema_name=base, tenant=True, interactive=False, verbosity=verbosity)


def schema_create(schema_name: str, *, method: str | None = None) -> None:
    """Create a tenant schema holding every tenant table, fully migrated.

    Runs in the caller's transaction: if that transaction rolls back, so does the schema.
    """
    method = method or settings.FOUNDRY_TENANT_PROVISIONING
    connection.set_schema_to_public()
    if method == "clone":
        CloneSchema().clone_schema(settings.TENANT_BASE_SCHEMA, schema_name, "DATA", set_connection=False)
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(schema_name)}")
        call_command("migrate_schemas", schema_name=schema_name, tenant=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()


def schema_is_present(schema_name: str) -> bool:
    return schema_exists(schema_name)
