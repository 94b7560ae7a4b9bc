"""Row-Level Security of the billing tables in the public schema: whose rows a transaction sees.

Every row of the usage ledger, its roll-ups, running totals and budgets carries `tenant_id`, and
each table has one policy (ENABLE + FORCE ROW LEVEL SECURITY, so the tables' owner is bound
too; the application's role is not their owner where the platform has an owner role):

    tenant_id = ANY (<the ids in the transaction-local setting foundry.tenant_ids>)

The platform sets that setting from the resolved tenant with `set_config(..., is_local => true)`,
so it lives exactly as long as the transaction: a pooled connection handed to another request
carries nothing over, and a statement outside any scope sees no rows and may write none.
Operators' platform-wide reads scope a transaction to every tenant they report on.

The policy is written inline, not behind a function, and uses only STABLE expressions, so the
planner can use the `tenant_id` indexes (tests/billing/test_rls.py fails on a sequential scan).
"""

from collections.abc import Iterable
from contextlib import contextmanager

from django.db import connection, transaction

SETTING = "foundry.tenant_ids"
POLICY = "tenant_id = ANY (string_to_array(nullif(current_setting('foundry.tenant_ids', true), ''), ',')::bigint[])"
TABLES = ("billing_usage", "billing_usage_month", "billing_usage_day", "billing_budget")


def policy_sql(table: str) -> str:
    """The DDL that puts `table` under the tenant policy (migrations)."""
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"
        f" ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
        f" CREATE POLICY {table}_tenant ON {table} USING ({POLICY}) WITH CHECK ({POLICY});"
    )


def policy_drop_sql(table: str) -> str:
    return (
        f"DROP POLICY {table}_tenant ON {table};"
        f" ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;"
        f" ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
    )


def scope_value(tenant_ids: Iterable[int]) -> str:
    return ",".join(str(int(tenant_id)) for tenant_id in tenant_ids)


def current_tenant_id() -> int:
    """The id of the tenant this connection is set to (a request's, a task's)."""
    if connection.schema_name == "public":
        raise LookupError("no tenant is set on this connection")
    tenant_id = getattr(getattr(connection, "tenant", None), "pk", None)
    if tenant_id is not None:
        return tenant_id
    # Set by schema name only (schema_context): look the tenant up.
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM public.tenants_tenant WHERE schema_name = %s", [connection.schema_name])
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no tenant has the schema {connection.schema_name!r}")
    return row[0]


@contextmanager
def usage_scope(*tenant_ids: int):
    """A transaction (a savepoint inside one) whose billing reads and writes reach the rows of
    `tenant_ids` only — none when empty. The setting before it is put back on the way out (a
    rolled-back scope needs nothing: PostgreSQL reverts the setting with the savepoint)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [SETTING])
        previous = cursor.fetchone()[0] or ""
        cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, scope_value(tenant_ids)])
        yield
        cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, previous])


def tenant_usage_scope():
    """`usage_scope` for the tenant this connection is set to."""
    return usage_scope(current_tenant_id())
