"""Creating tenant schemas: by cloning the prepared base schema, or by running migrations.

Cloning copies TENANT_BASE_SCHEMA *with its rows*, which include django_migrations, content
types and permissions; so the clone is already a fully migrated schema and needs no
fake-migration pass (the step that makes django-tenants' own cloning slow as migrations grow).
`base_schema_prepare` keeps the base schema migrated; `migrate_platform` runs it on every deploy.
"""

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import quote_schema_name, schema_exists


def clone_function_install() -> None:
    """Install the clone function in the public schema (as the role that owns it: migrate_platform).

    Once per deploy: django-tenants would re-create the function on every clone, and two
    concurrent CREATE OR REPLACE FUNCTION calls fail ("tuple concurrently updated")."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(_clone_function())


# Migrating the base schema and cloning it take turns: `base_schema_prepare` holds this advisory
# lock (exclusively) while it migrates the base, each clone (shared) until its transaction ends.
BASE_LOCK = "foundry:base-schema"


def base_schema_prepare(*, verbosity: int = 0) -> None:
    """Create (if missing) and migrate the schema new tenants are cloned from (as the app role,
    which clones it and owns its clones), while no clone reads it (BASE_LOCK)."""
    base = settings.TENANT_BASE_SCHEMA
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(base)}")
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [BASE_LOCK])
    try:
        call_command("migrate_schemas", schema_name=base, tenant=True, interactive=False, verbosity=verbosity)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [BASE_LOCK])


# django-tenants' clone function creates two enum types in the public schema when it starts and
# drops them when it ends, so its caller would need CREATE there (and two clones at once would
# race on them). They are created once, beside the function, by the role that owns the public
# schema, and the function only uses them: the app role clones without CREATE on public.
_WORK_TYPES = (
    "CREATE TYPE public.objj_type AS ENUM ('TABLE','VIEW','COLUMN','SEQUENCE','FUNCTION','SCHEMA','DATABASE');\n"
    "  CREATE TYPE public.permm_type AS ENUM ('SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES',"
    "'TRIGGER','USAGE','CREATE','EXECUTE','CONNECT','TEMPORARY');"
)
_WORK_TYPES_DROP = "  DROP TYPE IF EXISTS public.objj_type;\n  DROP TYPE IF EXISTS public.permm_type;"


def _clone_function() -> str:
    """django-tenants' clone_schema, with its work types made once instead of per call."""
    function = CLONE_SCHEMA_FUNCTION.format(db_user=connection.settings_dict["USER"])
    start = function.index("  -- Validate required types exist.  If not, create them.")
    end = function.index(_WORK_TYPES, start) + len(_WORK_TYPES)
    if function.count(_WORK_TYPES_DROP) != 1:
        raise RuntimeError("django-tenants' clone_schema changed: review apps/tenants/schemas.py, _clone_function")
    function = function[:start] + function[end:]
    types = _WORK_TYPES.replace("\n  ", "\n        ")
    create = f"DO $$ BEGIN\n    IF to_regtype('public.objj_type') IS NULL THEN\n        {types}\n    END IF;\nEND $$;\n"
    return create + function.replace(_WORK_TYPES_DROP, "")


def schema_create(schema_name: str, *, method: str | None = None) -> None:
    """Create a tenant schema holding every tenant table, fully migrated.

    Runs in the caller's transaction: if that transaction rolls back, so does the schema.
    """
    method = method or settings.FOUNDRY_TENANT_PROVISIONING
    connection.set_schema_to_public()
    if method == "clone":
        base = settings.TENANT_BASE_SCHEMA
        with connection.cursor() as cursor:
            # The clone reads the base's tables, then its django_migrations, each in a snapshot of
            # its own: a base migration committing in between would leave a tenant recording a
            # migration it lacks (or lacking the record of one it has). Clones and migrating the
            # base take turns (BASE_LOCK), both before touching any table: no deadlock.
            cursor.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", [BASE_LOCK])
            # NOACL: the base schema has no grants of its own to copy, and re-granting the owner's
            # privileges table by table is the part of the clone that grows with the catalog.
            cursor.execute("SELECT public.clone_schema(%s, %s, 'DATA', 'NOACL')", [base, schema_name])
        _constraint_names_align(base, schema_name)
        _sequence_types_align(base, schema_name)
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(schema_name)}")
        call_command("migrate_schemas", schema_name=schema_name, tenant=True, interactive=False, verbosity=0)
    connection.set_schema_to_public()


def schema_is_present(schema_name: str) -> bool:
    return schema_exists(schema_name)


_CONSTRAINTS_SQL = """
    SELECT rel.relname, con.conname, con.contype,
           replace(pg_get_constraintdef(con.oid), quote_ident(%(schema)s) || '.', '')
      FROM pg_constraint con
      JOIN pg_class rel ON rel.oid = con.conrelid
      JOIN pg_namespace ns ON ns.oid = rel.relnamespace
     WHERE ns.nspname = %(schema)s
"""


_SEQUENCE_TYPES_SQL = """
    SELECT clone_seq.oid::regclass::text, format_type(base.seqtypid, NULL)
      FROM pg_sequence base
      JOIN pg_class base_seq ON base_seq.oid = base.seqrelid
      JOIN pg_namespace base_ns ON base_ns.oid = base_seq.relnamespace AND base_ns.nspname = %(base)s
      JOIN pg_namespace clone_ns ON clone_ns.nspname = %(clone)s
      JOIN pg_class clone_seq ON clone_seq.relnamespace = clone_ns.oid AND clone_seq.relname = base_seq.relname
      JOIN pg_sequence clone ON clone.seqrelid = clone_seq.oid
     WHERE clone.seqtypid <> base.seqtypid
"""


def _sequence_types_align(base: str, clone: str) -> None:
    """Give the clone's sequences the types they have in the base schema. The clone function
    makes every identity sequence bigint (an integer column's with an explicit maximum of 2^31-1),
    a maximum that a later migration widening the column to bigint would not lift on clones: their
    inserts would stop at 2^31-1 while migrated schemas go on."""
    with connection.cursor() as cursor:
        cursor.execute(_SEQUENCE_TYPES_SQL, {"base": base, "clone": clone})
        for sequence, data_type in cursor.fetchall():
            cursor.execute(f"ALTER SEQUENCE {sequence} AS {data_type}")


def _constraint_names_align(base: str, clone: str) -> None:
    """Give the clone's constraints the names they have in the base schema.

    The clone function re-creates unique constraints under PostgreSQL's default names, not
    Django's; later migrations that drop or alter a constraint by name would then fail on
    cloned tenants only. Constraints are matched by table, type and definition.
    """
    with connection.cursor() as cursor:
        cursor.execute(_CONSTRAINTS_SQL, {"schema": base})
        wanted = {(table, kind, definition): name for table, name, kind, definition in cursor.fetchall()}
        cursor.execute(_CONSTRAINTS_SQL, {"schema": clone})
        for table, name, kind, definition in cursor.fetchall():
            target = wanted.get((table, kind, definition))
            if target and target != name:
                cursor.execute(
                    f"ALTER TABLE {quote_schema_name(clone)}.{quote_schema_name(table)} "
                    f"RENAME CONSTRAINT {quote_schema_name(name)} TO {quote_schema_name(target)}"
                )
