"""Two database roles: the owner of the shared tables, and the application that only uses them.

The application connects as DATABASE_URL's role (the *app role*). Where FOUNDRY_DB_OWNER_USER
names another role (the *owner role*, `bin/dev` creates `foundry_owner`), the public schema's
tables, sequences and functions belong to that role instead: migrations connect as it
(`as_owner`: `migrate_platform`, the test database's set-up), and the app role gets only rows
(`app_role_grant`):

- SELECT, INSERT, UPDATE, DELETE on the public tables, never TRUNCATE, REFERENCES or TRIGGER;
  no UPDATE of the audit trail's events and signed checkpoints, nor of the usage ledger's rows
  (their triggers refuse it too), and no DELETE from the trail (events, checkpoints, chain heads
  and bases): retention, import and purge call the owner's functions
  (apps/audit/migrations/0008_owner_erasure.py); only SELECT on the public schema's migration
  records;
- USAGE and SELECT on the public sequences (nextval), never UPDATE: setval would move the trail's
  or the ledger's ids onto ones in use, or to their end, and every later append would fail;
- so the app role cannot lift what guards the shared tables: turn Row-Level Security off or
  unforce it, drop or replace a policy, disable a trigger, replace a guard function, truncate.
  Only a table's owner may do those, and the app role is not a member of the owner role (the
  owner is a member of the app role instead: it may end the app role's connections, and create
  a database for it).

Tenant schemas stay the app role's: it creates them at run time (cloning the base schema), and
drops them (deletion, restore). Their migrations (the base schema's, every tenant's) run logged
in as the app role, never as the owner: code the app role can put in a schema it owns (a
function behind a policy, a default, a trigger) runs as whoever touches that schema, and in a
session logged in as the owner it could undo any `SET ROLE` and act as the owner. For the same reason nothing run as
the owner reads or writes a tenant schema.

Without FOUNDRY_DB_OWNER_USER (or with the app role's own name) there is one role, as before:
it owns everything, and `FORCE ROW LEVEL SECURITY` still binds it.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection as default_connection
from psycopg import sql

# Shared tables the app role may read and append to but never update (the triggers of
# public.foundry_refuse_change refuse it too: two locks, one of them the owner's), nor delete
# from: retention, import and purge call the owner's functions (audit migrations/0008).
NO_UPDATE_TABLES = ("audit_auditevent", "audit_auditcheckpoint", "billing_usage")
NO_DELETE_TABLES = ("audit_auditevent", "audit_auditcheckpoint", "audit_auditchain", "audit_auditchainbase")
# Shared tables the app role may only read: which migrations of the public schema are applied is
# the owner's record (marking one unapplied, or a future one applied, would steer the next
# `migrate_platform`). Tenant schemas keep their own django_migrations, the app role's.
READ_ONLY_TABLES = ("django_migrations",)


def app_role() -> str:
    return settings.FOUNDRY_DB_APP_ROLE


def owner_role() -> str | None:
    """The owner role's name, or None when the app role owns everything."""
    owner = settings.FOUNDRY_DB_OWNER_USER
    return owner if owner and owner != app_role() else None


@contextmanager
def as_owner(conn=default_connection) -> Iterator[None]:
    """Connect as the owner role meanwhile (a new connection: the open one is closed first and
    after). Nothing changes without an owner role."""
    owner = owner_role()
    if owner is None:
        yield
        return
    settings_dict = conn.settings_dict
    saved = settings_dict["USER"], settings_dict["PASSWORD"]
    conn.close()
    settings_dict["USER"], settings_dict["PASSWORD"] = owner, settings.FOUNDRY_DB_OWNER_PASSWORD
    try:
        yield
    finally:
        conn.close()
        settings_dict["USER"], settings_dict["PASSWORD"] = saved


def definer_functions_restrict(conn=default_connection) -> None:
    """As the public schema's owner: its SECURITY DEFINER functions (the audit trail's pruning,
    purging and head-dropping, which delete as the owner) are executable by the app role only.
    PostgreSQL lets PUBLIC execute a new function: any role that logs in — the read-only backup
    role, another service's — would otherwise delete from the trail through them."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef AND p.proowner = current_user::regrole"
        )
        for (signature,) in cursor.fetchall():
            function = sql.SQL(signature)  # PostgreSQL's own rendering of the function's name and arguments
            cursor.execute(
                sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(function).as_string(cursor.connection)
            )
            cursor.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}")
                .format(function, sql.Identifier(app_role()))
                .as_string(cursor.connection)
            )


def app_role_grant(conn=default_connection) -> None:
    """As the owner role: give the app role the rows of the public schema's tables (those there
    now, and those the owner creates later), the right to create tenant schemas, and no more."""
    owner = owner_role()
    if owner is None or conn.settings_dict["USER"] != owner:
        return
    app = sql.Identifier(app_role())
    statements = [
        "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {database} TO {app}",
        "GRANT USAGE ON SCHEMA public TO {app}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        "REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA public FROM {app}",  # granted by releases before
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE UPDATE ON SEQUENCES FROM {app}",
    ]
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        database = sql.Identifier(cursor.fetchone()[0])
        for statement in statements:
            cursor.execute(sql.SQL(statement).format(database=database, app=app).as_string(cursor.connection))
        revokes = {table: ["UPDATE"] for table in NO_UPDATE_TABLES}
        for table in NO_DELETE_TABLES:
            revokes.setdefault(table, []).append("DELETE")
        for table in READ_ONLY_TABLES:
            revokes[table] = ["INSERT", "UPDATE", "DELETE"]
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(%s)",
            [list(revokes)],
        )
        for (table,) in cursor.fetchall():
            revoke = sql.SQL("REVOKE {}, TRUNCATE, REFERENCES, TRIGGER ON public.{} FROM {}").format(
                sql.SQL(", ").join(sql.SQL(privilege) for privilege in revokes[table]), sql.Identifier(table), app
            )
            cursor.execute(revoke.as_string(cursor.connection))
