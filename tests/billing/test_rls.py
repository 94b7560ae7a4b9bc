"""Row-Level Security of the usage ledger (public schema): as the application's own role, a
transaction sees and writes only the rows of the tenant it is scoped to, none without a scope,
and a pooled connection carries no scope from one transaction into the next."""

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from apps.billing.models import UsageDay, UsageMonth, UsageRecord
from apps.billing.quotas import month_of
from apps.billing.rls import SETTING, TABLES, usage_scope
from apps.runs.usage import usage_ctes, usage_record
from tests.conftest import test_database_url

INSERT = (
    "INSERT INTO billing_usage (tenant_id, project, agent, provider, model, input_tokens, output_tokens,"
    " cached_tokens, latency_ms, created_at) VALUES (%s, 'p', 'a', 'scripted', 'm', %s, 1, 0, 1.0, now())"
)


def scoped(cursor, *tenant_ids: int) -> None:
    cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, ",".join(map(str, tenant_ids))])


@pytest.fixture
def app_connection(django_db_setup):
    """A connection of the application's role outside the test's transaction, as a pool holds one."""
    with psycopg.connect(test_database_url(), autocommit=True) as conn:
        yield conn


@pytest.fixture
def two_tenants(app_connection):
    """Rows of two tenant ids of this test's own, committed (the ledger is append-only)."""
    a, b = (uuid.uuid4().int % 10**12 + 10**12 for _ in range(2))
    for tenant_id, tokens in ((a, 11), (a, 12), (b, 21)):
        with app_connection.transaction(), app_connection.cursor() as cursor:
            scoped(cursor, tenant_id)
            cursor.execute(INSERT, [tenant_id, tokens])
    return a, b


def test_the_app_role_sees_only_the_scoped_tenants_rows_and_none_without_a_scope(app_connection, two_tenants):
    a, _ = two_tenants
    cursor = app_connection.cursor()
    cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert cursor.fetchone() == (False, False)
    with app_connection.transaction():
        scoped(cursor, a)
        cursor.execute("SELECT * FROM billing_usage")  # no WHERE: the policy alone filters
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        assert sorted((row["tenant_id"], row["input_tokens"]) for row in rows) == [(a, 11), (a, 12)]
    cursor.execute("SELECT count(*) FROM billing_usage")
    assert cursor.fetchone() == (0,)
    for table in TABLES:
        cursor.execute(f"SELECT count(*) FROM {table}")
        assert cursor.fetchone() == (0,), table


def test_writing_another_tenants_row_is_refused(app_connection, two_tenants):
    a, b = two_tenants
    cursor = app_connection.cursor()
    refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security")
    for scope in ((a,), ()):
        with refused, app_connection.transaction():
            scoped(cursor, *scope)
            cursor.execute(INSERT, [b, 99])
    with app_connection.transaction():
        scoped(cursor, b)
        cursor.execute("SELECT input_tokens FROM billing_usage")
        assert cursor.fetchall() == [(21,)]
    # Nor can a row be handed to another tenant, or another tenant's row be reached to change it.
    budget = "INSERT INTO billing_budget (tenant_id, project, on_exhausted, updated_by, updated_at)"
    with app_connection.transaction():
        scoped(cursor, a)
        cursor.execute(budget + " VALUES (%s, 'p', 'stop', 'test', now())", [a])
    with refused, app_connection.transaction():
        scoped(cursor, a)
        cursor.execute("UPDATE billing_budget SET tenant_id = %s WHERE tenant_id = %s", [b, a])
    with app_connection.transaction():
        scoped(cursor, b)
        cursor.execute("UPDATE billing_budget SET monthly_tokens = 1 WHERE tenant_id = %s", [a])
        assert cursor.rowcount == 0


def test_a_pooled_connection_carries_no_scope_into_the_next_transaction(app_connection, two_tenants):
    """One connection serving tenant a's request, then an unscoped one, then tenant b's: the
    setting is transaction-local, so nothing of a's request is left for the next."""
    a, b = two_tenants
    cursor = app_connection.cursor()
    # Request 1 writes as the ledger does, scoping its own statement (autocommit: one transaction).
    record = UsageRecord(
        tenant_id=a, project="p", agent="a", run_id=uuid.uuid4(), step=1, provider="scripted", model="m",
        input_tokens=13, output_tokens=1, cached_tokens=0, latency_ms=1.0, created_at=datetime.now(UTC),
    )  # fmt: skip
    ctes, params = usage_ctes(record)
    cursor.execute(f"WITH {ctes} SELECT (SELECT id FROM usage)", params)
    assert cursor.fetchone()[0] is not None
    cursor.execute("SELECT current_setting(%s, true)", [SETTING])
    assert cursor.fetchone()[0] in (None, "")
    cursor.execute("SELECT count(*) FROM billing_usage")  # request 2: no scope
    assert cursor.fetchone() == (0,)
    with app_connection.transaction():  # request 3: tenant b
        scoped(cursor, b)
        cursor.execute("SELECT tenant_id, input_tokens FROM billing_usage")
        assert cursor.fetchall() == [(b, 21)]
    # A failed transaction leaves nothing behind either.
    with pytest.raises(psycopg.errors.DivisionByZero), app_connection.transaction():
        scoped(cursor, a)
        cursor.execute("SELECT 1 / 0")
    cursor.execute("SELECT count(*) FROM billing_usage")
    assert cursor.fetchone() == (0,)


def test_a_django_scope_ends_with_its_transaction_and_restores_the_one_around_it(acme, globex):
    usage_record(tenant_id=acme.pk, project="p", agent="a", run_id=None, step=None, provider="s", model="m",
                 input_tokens=1, output_tokens=1)  # fmt: skip
    with usage_scope(globex.pk):
        with usage_scope(acme.pk):
            assert UsageRecord.objects.filter(tenant_id=acme.pk).count() == 1
        assert UsageRecord.objects.count() == 0  # globex's scope again: acme's row is not there
    assert UsageRecord.objects.count() == 0


def test_the_ledgers_queries_keep_to_the_tenant_index(acme):
    """With sequential scans priced out, a query still planned as one has no index path: the
    policy (or the query) lost the tenant_id index. A VOLATILE wrapper in the policy does that."""
    now = datetime.now(UTC)
    queries = [
        UsageRecord.objects.filter(tenant_id=acme.pk, created_at__gte=now),
        UsageRecord.objects.filter(created_at__gte=now),  # the policy alone leads to the index
        UsageRecord.objects.filter(tenant_id=acme.pk, run_id=uuid.uuid4(), step=1),
        UsageMonth.objects.filter(tenant_id=acme.pk, month=month_of(), project__in=["", "p"]),
        UsageDay.objects.filter(tenant_id=acme.pk, day__gte=now.date()),
    ]
    with usage_scope(acme.pk), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries:
            plan = query.explain()
            assert "Seq Scan" not in plan, plan
            conditions = [line for line in plan.splitlines() if "Index Cond" in line or "Recheck Cond" in line]
            assert any("tenant_id" in line for line in conditions), plan  # not a walk of the whole index
        # The check itself can fail: the same policy behind a VOLATILE function plans a Seq Scan.
        cursor.execute(
            "CREATE TEMPORARY TABLE rls_probe (tenant_id bigint, created_at timestamptz);"
            " CREATE INDEX ON rls_probe (tenant_id);"
            " CREATE FUNCTION pg_temp.scope() RETURNS bigint[] VOLATILE LANGUAGE plpgsql AS $$ BEGIN"
            f" RETURN string_to_array(nullif(current_setting('{SETTING}', true), ''), ',')::bigint[]; END $$;"
            " ALTER TABLE rls_probe ENABLE ROW LEVEL SECURITY; ALTER TABLE rls_probe FORCE ROW LEVEL SECURITY;"
            " CREATE POLICY probe ON rls_probe USING (tenant_id = ANY (pg_temp.scope()))"
        )
        cursor.execute("EXPLAIN SELECT * FROM rls_probe WHERE created_at >= now()")
        assert "Seq Scan" in "\n".join(row[0] for row in cursor.fetchall())
