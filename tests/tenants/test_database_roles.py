"""The app role uses the shared tables' rows; only the owner role may alter or unguard them
(foundry/db/roles.py). Each refusal is tried on the test's own connection, as the application
connects, the way SQL injected into any query would try it."""

import os
from contextlib import contextmanager

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context

from apps.billing.rls import TABLES as BILLING_TABLES
from foundry.db.roles import app_role, as_owner, owner_role

pytestmark = pytest.mark.skipif(
    owner_role() is None, reason="one database role (FOUNDRY_DB_OWNER_USER unset): it owns every table"
)

# Every shared table under a tenant policy (test_every_policed_table_is_tried keeps the list whole).
GUARDED = (
    "audit_auditevent", "audit_auditchain", "audit_auditchainbase", "audit_auditactor", "audit_auditcheckpoint",
    "audit_auditsink", *BILLING_TABLES,
)  # fmt: skip


def refused(statement: str, params=None) -> str:
    """Run `statement` in a savepoint; the SQLSTATE it failed with (the test fails if it ran)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    except DatabaseError as error:
        return error.__cause__.sqlstate
    raise AssertionError(f"the app role ran: {statement}")


INSUFFICIENT_PRIVILEGE = "42501"


@pytest.mark.django_db
@pytest.mark.parametrize("table", GUARDED)
@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE public.{t} NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE public.{t} DISABLE ROW LEVEL SECURITY",
        "DROP POLICY {t}_tenant ON public.{t}",
        "CREATE POLICY everyone ON public.{t} USING (true)",
        "ALTER TABLE public.{t} DISABLE TRIGGER ALL",
        "ALTER TABLE public.{t} OWNER TO CURRENT_USER",
        "TRUNCATE public.{t}",
        "DROP TABLE public.{t}",
    ],
)
def test_the_app_role_cannot_lift_what_guards_a_shared_table(table, statement):
    assert refused(statement.format(t=table)) == INSUFFICIENT_PRIVILEGE


@pytest.mark.django_db
def test_every_policed_table_is_tried():
    with connection.cursor() as cursor:
        cursor.execute("SELECT polrelid::regclass::text FROM pg_policy")
        assert {row[0] for row in cursor.fetchall()} == set(GUARDED)


@pytest.mark.django_db
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditcheckpoint"])
def test_the_audit_trail_is_not_updatable_by_grant_either(table):
    # Refused by the privilege itself, before the append-only trigger is reached.
    assert refused(f"UPDATE public.{table} SET id = id") == INSUFFICIENT_PRIVILEGE


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM public.django_migrations WHERE app = 'audit'",
        "UPDATE public.django_migrations SET name = name",
        "INSERT INTO public.django_migrations (app, name, applied) VALUES ('audit', '9999_future', now())",
    ],
)
def test_the_public_schemas_migration_records_are_the_owners(statement):
    # Marking a migration unapplied (or a future one applied) would steer the next migrate_platform.
    assert refused(statement) == INSUFFICIENT_PRIVILEGE


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "SET ROLE {owner}",
        "CREATE TABLE public.intruder (id int)",
        "CREATE FUNCTION public.nullif(bigint, bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint'",
        "CREATE OR REPLACE FUNCTION public.foundry_refuse_change() RETURNS trigger LANGUAGE plpgsql"
        " AS 'BEGIN RETURN NEW; END'",
        "CREATE OR REPLACE FUNCTION public.audit_event_hash() RETURNS text LANGUAGE sql AS 'SELECT 1::text'",
        "ALTER FUNCTION public.foundry_refuse_change() OWNER TO CURRENT_USER",
    ],
)
def test_the_app_role_can_neither_become_the_owner_nor_add_to_the_public_schema(statement):
    assert refused(statement.format(owner=owner_role())) == INSUFFICIENT_PRIVILEGE


@pytest.mark.django_db
def test_who_owns_what():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, pg_has_role(current_user, %s, 'MEMBER')", [owner_role()])
        assert cursor.fetchone() == (app_role(), False)
        cursor.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')"
        )
        assert {row[0] for row in cursor.fetchall()} == {owner_role()}
        cursor.execute(
            "SELECT DISTINCT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public'"
        )
        assert {row[0] for row in cursor.fetchall()} == {owner_role()}
        # Tenant schemas, and everything in them, are the app role's: it creates and drops them.
        cursor.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('acme', '_foundry_base') AND c.relkind IN ('r', 'p', 'S')"
            " UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname IN ('acme', '_foundry_base')"
        )
        assert {row[0] for row in cursor.fetchall()} == {app_role()}


@pytest.mark.django_db
def test_another_tenants_usage_stays_out_of_reach(acme, globex):
    """The app role cannot lift the policy, so tenant A's scope still reads no row of B's."""
    from apps.billing.rls import usage_scope
    from apps.runs.usage import usage_record

    with schema_context("globex"):
        usage_record(tenant_id=globex.pk, project="p", agent="a", run_id=None, step=None, provider="s",
                     model="m", input_tokens=7, output_tokens=1)  # fmt: skip
    for table in BILLING_TABLES:
        assert refused(f"ALTER TABLE public.{table} NO FORCE ROW LEVEL SECURITY") == INSUFFICIENT_PRIVILEGE
    count = "SELECT count(*) FROM billing_usage WHERE tenant_id = %s"
    with usage_scope(acme.pk), connection.cursor() as cursor:
        cursor.execute(count, [globex.pk])
        assert cursor.fetchone()[0] == 0
    with usage_scope(globex.pk), connection.cursor() as cursor:
        cursor.execute(count, [globex.pk])
        assert cursor.fetchone()[0] == 1


@pytest.mark.django_db
def test_the_app_role_still_provisions_and_uses_tenant_schemas():
    from apps.tenants.services import tenant_provision

    tenant = tenant_provision(slug="initech", name="Initech", owner_email="o@initech.test").tenant
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = current_schema()")
        assert cursor.fetchone()[0] == app_role()


@contextmanager
def connected_as(**credentials):
    """Django's connection with other credentials meanwhile (as foundry.db.roles.as_owner does)."""
    settings_dict = connection.settings_dict
    saved = {key: settings_dict[key] for key in credentials}
    connection.close()
    settings_dict.update(credentials)
    try:
        yield
    finally:
        connection.close()
        settings_dict.update(saved)


@pytest.fixture
def unblocked(django_db_setup, django_db_blocker):
    """The database outside any test transaction (the check reconnects with other credentials).
    Not `transaction=True`: its flush would TRUNCATE, which the app role may not."""
    with django_db_blocker.unblock():
        yield


def test_the_deploy_check_names_a_role_that_owns_the_shared_tables_or_escapes_rls(unblocked):
    from apps.tenants.checks import database_role_bound

    assert database_role_bound(None, databases=["default"]) == []  # the app role: bound, owns nothing
    assert database_role_bound(None, databases=None) == []  # without --database: no query at all
    with as_owner():
        (warning,) = database_role_bound(None, databases=["default"])
    assert warning.id == "foundry.W030" and f"{owner_role()!r} owns" in warning.msg
    superuser = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    with connected_as(HOST=superuser["host"], PORT=superuser.get("port", "5432"), USER=superuser["user"], PASSWORD=""):
        (error,) = database_role_bound(None, databases=["default"])
    assert error.id == "foundry.E030" and "a superuser" in error.msg


def test_the_deploy_check_names_settings_saved_on_the_app_role_that_the_platform_sets_itself(unblocked):
    """SQL run as the app role (injected, say) may save settings on the role itself (ALTER ROLE …
    SET: PostgreSQL lets any role save the settings any session may set), and every later session
    starts with them — another workspace's schema first on the search path, Row-Level Security off
    (queries then fail rather than see past it). `check --deploy --database default` names those,
    not the ones an operator may save on purpose (a statement timeout). Saved for the test
    database only. (The platform's own `foundry.*` settings cannot be saved so by the app role:
    PostgreSQL refuses it.)"""
    from apps.tenants.checks import database_role_bound

    role, database = app_role(), connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        for name, value in (
            ("row_security", "off"),
            ("search_path", "acme, public"),
            ("statement_timeout", "60s"),
        ):
            cursor.execute(f'ALTER ROLE "{role}" IN DATABASE "{database}" SET {name} = \'{value}\'')  # constants
    try:
        found = database_role_bound(None, databases=["default"])
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER ROLE "{role}" IN DATABASE "{database}" RESET ALL')
    (warning,) = found
    assert warning.id == "foundry.W031"
    assert "row_security, search_path" in warning.msg and "statement_timeout" not in warning.msg
    assert database_role_bound(None, databases=["default"]) == []
