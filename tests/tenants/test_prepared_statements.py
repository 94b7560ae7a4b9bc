"""The server binds the application's parameters and prepares a statement it runs 5 times on a
connection (settings.DATABASES' OPTIONS: server_side_binding, psycopg's prepare_threshold). A
statement prepared while one workspace's schema was the search path must read the next
workspace's tables once the router points the connection there, never the first one's."""

from django.db import connection
from django_tenants.utils import schema_context

from apps.accounts.models import User


def _active_members() -> int:
    return User.objects.filter(is_active=True).count()


def _prepared_here() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def test_a_statement_prepared_in_one_workspace_reads_the_next_workspaces_tables(acme, globex):
    with schema_context("acme"):
        counts = {_active_members() for _ in range(6)}
        assert counts == {5}
    assert any("accounts_user" in statement for statement in _prepared_here()), "the count was not prepared"
    with schema_context("globex"):
        assert [_active_members() for _ in range(3)] == [1, 1, 1]
    with schema_context("acme"):
        assert _active_members() == 5


def test_a_statement_prepared_before_a_migration_changed_its_result_runs_after_it(db):
    """A migration run by another process adds a column to a table a prepared statement reads
    with `*`: the server refuses the old statement; in autocommit (a connection of its own here,
    outside the test's transaction) the same call succeeds anyway."""
    import os

    import psycopg
    from django.db import connections

    mine = connections.create_connection("default")

    params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    params["dbname"] = connection.settings_dict["NAME"]
    with psycopg.connect(**params, autocommit=True) as owner:
        owner.execute("CREATE TABLE public.prepared_probe (id int PRIMARY KEY, name text)")
        owner.execute("INSERT INTO public.prepared_probe VALUES (1, 'a')")
        owner.execute(f"GRANT SELECT ON public.prepared_probe TO {connection.settings_dict['USER']}")
        try:

            def read() -> list:
                with mine.cursor() as cursor:
                    cursor.execute("SELECT * FROM public.prepared_probe WHERE id = %s", [1])
                    return cursor.fetchall()

            assert [read() for _ in range(6)][-1] == [(1, "a")]
            with mine.cursor() as cursor:
                cursor.execute("SELECT statement FROM pg_prepared_statements")
                assert any("prepared_probe" in statement for (statement,) in cursor.fetchall())
            owner.execute("ALTER TABLE public.prepared_probe ADD COLUMN size int DEFAULT 7")
            assert read() == [(1, "a", 7)]
            assert read() == [(1, "a", 7)]
            # Prepared again, and another migration: a long-lived connection (a worker's) heals
            # each time, not only the first.
            assert [read() for _ in range(6)][-1] == [(1, "a", 7)]
            owner.execute("ALTER TABLE public.prepared_probe ADD COLUMN colour text DEFAULT 'red'")
            assert read() == [(1, "a", 7, "red")]
            assert read() == [(1, "a", 7, "red")]
        finally:
            mine.close()
            owner.execute("DROP TABLE public.prepared_probe")


def test_a_prepared_statement_reads_a_schema_a_rolling_migration_has_changed_in_a_transaction(db, acme, globex):
    """`migrate_schemas` reaches one workspace's schema before another's: a statement prepared in
    acme then runs in globex, whose table has a column more. In a transaction (where it cannot be
    prepared afresh) it must still run: the hand-written statements name their columns (the
    bearer token's member lookup here), never `*`, whose result would differ."""
    import os

    import psycopg
    from django.db import connections

    from apps.identity.bearer import _MEMBER_SQL

    params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    params["dbname"] = connection.settings_dict["NAME"]
    mine = connections.create_connection("default")
    with psycopg.connect(**params, autocommit=True) as owner:
        try:
            mine.set_schema(acme.schema_name)
            for _ in range(6):
                with mine.cursor() as cursor:
                    cursor.execute(_MEMBER_SQL, ["https://idp.test", "nobody"])
                    assert cursor.fetchall() == []
            owner.execute(f'ALTER TABLE "{globex.schema_name}".accounts_user ADD COLUMN migrated_later int')
            mine.set_schema(globex.schema_name)
            mine.set_autocommit(False)
            with mine.cursor() as cursor:
                cursor.execute(_MEMBER_SQL, ["https://idp.test", "nobody"])
                assert cursor.fetchall() == []
            mine.rollback()
        finally:
            mine.close()
            owner.execute(f'ALTER TABLE "{globex.schema_name}".accounts_user DROP COLUMN IF EXISTS migrated_later')
