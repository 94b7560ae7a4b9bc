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

import contextlib
import logging
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
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
    which clones it and owns its clones), then take its definition, while no clone reads it
    (BASE_LOCK)."""
    base = settings.TENANT_BASE_SCHEMA
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(base)}")
    with _base_locked():
        call_command("migrate_schemas", schema_name=base, tenant=True, interactive=False, verbosity=verbosity)
    # django-tenants closes the connection when it has migrated a schema, and so lets go of the
    # lock: the definition is taken holding it again (in one snapshot with its fingerprint).
    with _base_locked():
        base_definition_capture()


@contextmanager
def _base_locked() -> Iterator[None]:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [BASE_LOCK])
    holder = connection.connection
    try:
        yield
    finally:
        if connection.connection is holder:  # else its session has ended, and the lock with it
            # A session that broke in the body has let go of the lock: its error is the one to see.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
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

# Where a definition is tried before it is kept (rolled back): no workspace's, a slug starts with a letter.
_PROBE = "_foundry_probe"


def _base_name() -> re.Pattern:
    """The base schema's name where pg_dump writes it: as an identifier, not inside another."""
    return re.compile(rf"(?<![\w$\"]){re.escape(settings.TENANT_BASE_SCHEMA)}(?![\w$])")


def _renamed(definition: str, schema_name: str) -> str:
    quoted = quote_schema_name(schema_name)
    return _base_name().sub(lambda _: quoted, definition)


class DefinitionUnusable(Exception):
    """pg_dump could not be run, wrote what a clone could not safely rename, or what does not
    make a schema like the base."""


def base_definition_capture() -> None:
    """Take the base schema's definition (holding BASE_LOCK, right after migrating the base): new
    workspaces are made by running it. It is kept only if it runs and makes a schema like the
    base (tried in a transaction rolled back). Failing that, the definition there was is dropped
    and the clone function makes workspaces, slower; the deploy goes on, with a warning."""
    try:
        if connection.in_atomic_block:  # pg_dump would not see what this transaction did
            raise DefinitionUnusable("the base schema was migrated inside a transaction")
        with transaction.atomic():
            with connection.cursor() as cursor:
                # The dump and the fingerprint of the same state: pg_dump reads this snapshot.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_export_snapshot()")
                (snapshot,) = cursor.fetchone()
                cursor.execute(_MIGRATIONS_DIGEST.format(base=quote_schema_name(settings.TENANT_BASE_SCHEMA)))
                (digest,) = cursor.fetchone()
            sql = dump_definition(_base_dump(snapshot))
            _definition_try(sql)
            BaseSchemaDefinition.objects.all().delete()
            BaseSchemaDefinition.objects.create(migrations=digest, sql=sql)
    except DefinitionUnusable as error:
        logger.warning("new workspaces will be made by the slower clone function: %s", error)
        BaseSchemaDefinition.objects.all().delete()


def _base_dump(snapshot: str) -> str:
    """pg_dump's text of the base schema in `snapshot`: its objects and rows, without owners,
    grants or tablespaces, connected as the application is (DATABASE_URL's TLS options included)."""
    try:
        command = [pg_binary("pg_dump"), "--no-password", "--schema", settings.TENANT_BASE_SCHEMA]
    except ToolMissing as error:
        raise DefinitionUnusable(str(error)) from None
    command += ["--snapshot", snapshot, "--no-owner", "--no-acl", "--no-tablespaces", "--no-table-access-method"]
    command += ["--rows-per-insert=1000"]
    env = pg_environment(database=connection.settings_dict["NAME"], application="foundry-base-schema")
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=300)  # noqa: S603
    except subprocess.TimeoutExpired:
        raise DefinitionUnusable("pg_dump did not finish within 300 s") from None
    except OSError as error:
        raise DefinitionUnusable(f"pg_dump could not be run: {error}") from None
    if done.returncode != 0:
        raise DefinitionUnusable(f"pg_dump failed: {' '.join(done.stderr.strip().splitlines()[-3:])}")
    return done.stdout


# What pg_dump writes ahead of the schema's first statement and after its last: comments, psql's
# meta-commands (`\restrict KEY`, `\unrestrict KEY`) and the settings of its own session
# (`SET statement_timeout = 0;` ..., the search_path emptied), which must not outlive a clone.
_HEADER_LINE = re.compile(
    r"(?:--.*|\\restrict \S+|SET \w+ = .*;|SELECT pg_catalog\.set_config\('search_path', '', false\);)?\Z"
)
_TRAILER_LINE = re.compile(r"(?:--.*|\\unrestrict \S+)?\Z")
_SESSION_SETTING = re.compile(r"^(?:SET |RESET |SELECT pg_catalog\.set_config\()", re.MULTILINE)


def dump_definition(dump: str) -> str:
    """pg_dump's text of the base schema as a definition: without what pg_dump writes before its
    first statement and after its last (the settings of its own session among them); the text
    between is kept whole, values and all. Refused if it sets anything of the session in between
    (pg_dump writes no SET there with --no-tablespaces and --no-table-access-method; a value with
    a line like one only leaves clones to the clone function), and unless every mention of the
    base's name qualifies a name or ends CREATE SCHEMA: a clone replaces them all with its own
    name, and nothing else of the text."""
    lines = dump.split("\n")
    start, end = 0, len(lines)
    while start < end and _HEADER_LINE.match(lines[start].strip()):
        start += 1
    while end > start and _TRAILER_LINE.match(lines[end - 1].strip()):
        end -= 1
    sql = "\n".join(lines[start:end]) + "\n"
    if _SESSION_SETTING.search(sql):
        raise DefinitionUnusable("pg_dump wrote a session setting among the schema's statements")
    if any(not after.startswith((".", ";")) for after in _base_name().split(sql)[1:]):
        raise DefinitionUnusable(f"pg_dump wrote {settings.TENANT_BASE_SCHEMA} where it is no schema name")
    return sql


def _definition_run(sql: str, schema_name: str) -> None:
    """Run the definition under `schema_name`: its many statements in one query, sent as they are
    (never prepared: prepare_threshold), its errors Django's."""
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.execute(_renamed(sql, schema_name), prepare=False)


def _definition_try(sql: str) -> None:
    """Run the definition under the probe's name and compare what it made with the base, its
    rows' contents included; undone."""
    probe = transaction.savepoint()
    try:
        _definition_run(sql, _PROBE)
        made, base = schema_shape(_PROBE), schema_shape(settings.TENANT_BASE_SCHEMA)
        with connection.cursor() as cursor:
            for shape, schema in ((made, _PROBE), (base, settings.TENANT_BASE_SCHEMA)):
                cursor.execute(_ROWS_DIGEST, {"schema": schema})
                shape["rows' contents"] = cursor.fetchall()
    except DatabaseError as error:
        raise DefinitionUnusable(f"the definition does not run: {str(error).strip()[:300]}") from None
    finally:
        transaction.savepoint_rollback(probe)
    differing = [part for part in base if made[part] != base[part]]
    if differing:
        raise DefinitionUnusable(f"the definition makes a schema unlike the base ({', '.join(differing)} differ)")


# Each table of a schema and a digest of its rows' text (a definition's rows must be the base's).
_ROWS_DIGEST = """
    SELECT c.relname,
           (xpath('/row/h/text()', query_to_xml(format(
               'SELECT md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text), '''')) AS h FROM %%I.%%I t',
               ns.nspname, c.relname), false, true, '')))[1]::text
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
     WHERE ns.nspname = %(schema)s AND c.relkind IN ('r', 'p') ORDER BY 1"""


# What a schema is made of, each part without the schema's own name (`schema_shape`).
SHAPE_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text, c.relpersistence,
               c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class')
          FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1""",
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, character_maximum_length, numeric_precision,
               is_identity, identity_generation, numeric_scale, collation_name,
               -- the columns' order (not their numbers, which keep the gaps of dropped columns)
               row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position),
               replace(coalesce(column_default, ''), quote_ident(%(schema)s) || '.', '')
          FROM information_schema.columns WHERE table_schema = %(schema)s ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, replace(indexdef, quote_ident(%(schema)s) || '.', '')
          FROM pg_indexes WHERE schemaname = %(schema)s ORDER BY 1, 2""",
    "constraints": """
        SELECT rel.relname, con.conname, con.contype,
               replace(pg_get_constraintdef(con.oid), quote_ident(%(schema)s) || '.', '')
          FROM pg_constraint con
          JOIN pg_class rel ON rel.oid = con.conrelid
          JOIN pg_namespace ns ON ns.oid = rel.relnamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1, 2, 3, 4""",
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin,
               s.seqcycle, pg_sequence_last_value(c.oid)
          FROM pg_sequence s
          JOIN pg_class c ON c.oid = s.seqrelid
          JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1""",
    "triggers": """
        SELECT c.relname, t.tgname, replace(pg_get_triggerdef(t.oid), quote_ident(%(schema)s) || '.', '')
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s AND NOT t.tgisinternal ORDER BY 1, 2""",
    "rows": """
        SELECT c.relname,
               (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %%I.%%I', ns.nspname, c.relname),
                                                    false, true, '')))[1]::text::bigint
          FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %(schema)s AND c.relkind IN ('r', 'p') ORDER BY 1""",
    "routines": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(pg_get_functiondef(p.oid))
          FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
         WHERE ns.nspname = %(schema)s ORDER BY 1, 2""",
    "policies": """
        SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check
          FROM pg_policies WHERE schemaname = %(schema)s ORDER BY 1, 2""",
    "types": """
        SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace ns ON ns.oid = t.typnamespace
         WHERE ns.nspname = %(schema)s AND t.typrelid = 0 AND t.typelem = 0 ORDER BY 1""",
}


def schema_shape(schema: str) -> dict[str, list[tuple]]:
    """The tables, columns, indexes, constraints, sequences, triggers and row counts of `schema`,
    with its owners and grants, comparable with another schema's."""
    shape = {}
    with connection.cursor() as cursor:
        for part, query in SHAPE_QUERIES.items():
            cursor.execute(query, {"schema": schema})
            shape[part] = cursor.fetchall()
    return shape


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
            if row is None:
                logger.warning("no current definition of the base schema (migrate_platform takes it): cloning")
            else:
                try:
                    with transaction.atomic():  # a savepoint: the clone function after a failure
                        _definition_run(row[0], schema_name)
                    return "definition"
                except DatabaseError as error:
                    # Dropped (with this workspace's transaction), not tried again by every workspace.
                    logger.error("the base schema's definition failed (%s): dropped, cloning", str(error).strip()[:300])
                    BaseSchemaDefinition.objects.all().delete()
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
