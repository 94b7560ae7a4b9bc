"""Creating tenant schemas: by cloning the prepared base schema, or by running migrations.

Cloning copies TENANT_BASE_SCHEMA *with its rows*, which include django_migrations, content
types and permissions; so the clone is already a fully migrated schema and needs no
fake-migration pass (the step that makes django-tenants' own cloning slow as migrations grow).
`base_schema_prepare` keeps the base schema migrated; `migrate_platform` runs it on every deploy.

A clone runs the base's definition (BaseSchemaDefinition: pg_dump's SQL, taken each time the
base is migrated) under the new schema's name: ~40% of the database's CPU of django-tenants'
clone function, which reads the catalog object by object in PL/pgSQL (bench/tenant_provisioning.py).
Without a current definition (no pg_dump, the base migrated by hand), the clone function does it.
"""

import logging
import re
import subprocess

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import quote_schema_name, schema_exists

from apps.tenants.models import BaseSchemaDefinition
from foundry.db.tools import ToolMissing, pg_binary, pg_environment

logger = logging.getLogger(__name__)


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
        base_definition_capture()
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


# The fingerprint of the base's applied migrations (BaseSchemaDefinition.migrations).
_MIGRATIONS_DIGEST = (
    "SELECT encode(sha256(convert_to(coalesce(string_agg(app || '.' || name, ',' ORDER BY app, name), ''),"
    " 'UTF8')), 'hex') FROM {base}.django_migrations"
)

_DEFINITION_CURRENT = (
    "SELECT sql FROM public.tenants_baseschemadefinition"  # noqa: S608 - the base's name, quoted
    f" WHERE migrations = ({_MIGRATIONS_DIGEST})"
)

# What pg_dump writes besides the schema's objects: comments, psql's meta-commands (\restrict) and
# settings of the dump's own session (search_path among them), which must not outlive a clone.
_DUMP_SESSION_LINE = re.compile(
    r"^(--.*|\\\w+.*|SET \w+ = .*;|SELECT pg_catalog\.set_config\('search_path', '', false\);)(\n|\Z)", re.MULTILINE
)


def _base_name() -> re.Pattern:
    """The base schema's name where pg_dump writes it: as an identifier, not inside another."""
    return re.compile(rf"(?<![\w$\"]){re.escape(settings.TENANT_BASE_SCHEMA)}(?![\w$])")


class DefinitionUnusable(Exception):
    """pg_dump could not be run, or wrote what a clone could not safely rename."""


def base_definition_capture() -> None:
    """Take the base schema's definition (while its migration holds BASE_LOCK): new workspaces
    are made by running it. Failing that, the stale definition is dropped and the clone function
    makes them, slower; the deploy goes on, with a warning."""
    base = quote_schema_name(settings.TENANT_BASE_SCHEMA)
    try:
        if connection.in_atomic_block:  # pg_dump would not see what this transaction did
            raise DefinitionUnusable("the base schema was migrated inside a transaction")
        sql = _base_dump()
    except DefinitionUnusable as error:
        logger.warning("new workspaces will be made by the slower clone function: %s", error)
        BaseSchemaDefinition.objects.all().delete()
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_MIGRATIONS_DIGEST.format(base=base))
            (digest,) = cursor.fetchone()
        BaseSchemaDefinition.objects.all().delete()
        BaseSchemaDefinition.objects.create(migrations=digest, sql=sql)


def _base_dump() -> str:
    """The base schema as SQL: its objects and rows, no owners, grants or session settings."""
    try:
        command = [pg_binary("pg_dump"), "--no-password", "--schema", settings.TENANT_BASE_SCHEMA]
    except ToolMissing as error:
        raise DefinitionUnusable(str(error)) from None
    command += ["--no-owner", "--no-acl", "--no-tablespaces", "--rows-per-insert=1000"]
    env = pg_environment(database=connection.settings_dict["NAME"], application="foundry-base-schema")
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=300)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise DefinitionUnusable("pg_dump did not finish within 300 s") from None
    except OSError as error:
        raise DefinitionUnusable(f"pg_dump could not be run: {error}") from None
    if done.returncode != 0:
        raise DefinitionUnusable(f"pg_dump failed: {' '.join(done.stderr.strip().splitlines()[-3:])}")
    return dump_definition(done.stdout)


def dump_definition(dump: str) -> str:
    """pg_dump's text of the base schema as a definition: without its session's settings, and
    refused unless every mention of the base's name qualifies a name or ends CREATE SCHEMA (a
    clone replaces them all with its own name, and nothing else of the text)."""
    sql = _DUMP_SESSION_LINE.sub("", dump)
    if any(not after.startswith((".", ";")) for after in _base_name().split(sql)[1:]):
        raise DefinitionUnusable(f"pg_dump wrote {settings.TENANT_BASE_SCHEMA} where it is no schema name")
    return sql


def schema_create(schema_name: str, *, method: str | None = None) -> str:
    """Create a tenant schema holding every tenant table, fully migrated; say how: "definition"
    (the base's, run under the schema's name), "function" (the clone function) or "migrate".
    `method` "clone" is the first, or the second without a current definition.

    Runs in the caller's transaction: if that transaction rolls back, so does the schema.
    """
    method = method or settings.FOUNDRY_TENANT_PROVISIONING
    connection.set_schema_to_public()
    if method == "migrate":
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {quote_schema_name(schema_name)}")
        call_command("migrate_schemas", schema_name=schema_name, tenant=True, interactive=False, verbosity=0)
        made = "migrate"
    else:
        made = _schema_clone(schema_name, function=method == "function")
    connection.set_schema_to_public()
    return made


def _schema_clone(schema_name: str, *, function: bool) -> str:
    base = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        # The clone reads the base's tables, then its django_migrations, each in a snapshot of
        # its own: a base migration committing in between would leave a tenant recording a
        # migration it lacks (or lacking the record of one it has). Clones and migrating the
        # base take turns (BASE_LOCK), both before touching any table: no deadlock.
        cursor.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", [BASE_LOCK])
        if not function:
            cursor.execute(_DEFINITION_CURRENT.format(base=quote_schema_name(base)))
            row = cursor.fetchone()
            if row is not None:
                # Many statements in one: sent as they are, never prepared (prepare_threshold).
                cursor.cursor.execute(_base_name().sub(quote_schema_name(schema_name), row[0]), prepare=False)
                return "definition"
            logger.warning("no current definition of the base schema (migrate_platform takes it): cloning")
        # NOACL: the base schema has no grants of its own to copy, and re-granting the owner's
        # privileges table by table is the part of the clone that grows with the catalog.
        cursor.execute("SELECT public.clone_schema(%s, %s, 'DATA', 'NOACL')", [base, schema_name])
    _constraint_names_align(base, schema_name)
    _sequence_types_align(base, schema_name)
    return "function"


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
