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
