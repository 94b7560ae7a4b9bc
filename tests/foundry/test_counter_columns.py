"""Adding a counter column to a large table reads none of its rows (foundry/db/counters.py): the
release still serving goes on reading and writing it meanwhile (docs/operations/deployment.md)."""

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from apps.tenants.models import Tenant
from foundry.db.roles import app_role_grant, as_owner, definer_functions_restrict


def _ledger_scans(cursor) -> int:
    cursor.execute(
        "SELECT coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables"
        " WHERE schemaname = 'public' AND relname = 'billing_usage'"
    )
    return cursor.fetchone()[0]


def test_billing_0005_adds_its_ledger_column_without_scanning_the_ledger(django_db_setup, django_db_blocker):
    """billing 0005 adds `cache_write_tokens` to the usage ledger, the largest shared table."""
    with django_db_blocker.unblock():
        with as_owner():
            try:
                call_command("migrate_schemas", "billing", "0004", shared=True, interactive=False, verbosity=0)
                connection.close()
                acme = Tenant.objects.get(schema_name="acme")
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('foundry.tenant_ids', %s, true)", [str(acme.pk)])
                    cursor.execute(
                        "INSERT INTO public.billing_usage (tenant_id, project, agent, provider, model, input_tokens,"
                        " output_tokens, cached_tokens, latency_ms, created_at)"
                        " SELECT %s, 'p', 'a', 's', 'm', 1, 1, 0, 1, now() FROM generate_series(1, 1000)",
                        [acme.pk],
                    )
                    before = _ledger_scans(cursor)
                    executor = MigrationExecutor(connection)
                    executor.migrate([("billing", "0005_cache_writes")])
                    scans = _ledger_scans(cursor) - before
                    transaction.set_rollback(True)  # leave the ledger as it was
            finally:
                call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
                app_role_grant()
                definer_functions_restrict()
        connection.set_schema_to_public()
    assert scans == 0


@pytest.mark.django_db
def test_runs_0008_adds_run_attempt_without_scanning_runs(acme):
    """runs 0008 adds `attempt` to runs_run, in every tenant schema."""
    call_command("migrate_schemas", "runs", "0007", schema_name=acme.schema_name, interactive=False, verbosity=0)
    connection.set_tenant(acme)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables WHERE schemaname = %s AND relname = 'runs_run'",
            [acme.schema_name],
        )
        before = cursor.fetchone()[0]
        MigrationExecutor(connection).migrate([("runs", "0008_run_attempt")])
        cursor.execute(
            "SELECT coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables WHERE schemaname = %s AND relname = 'runs_run'",
            [acme.schema_name],
        )
        scans = cursor.fetchone()[0] - before
    assert scans == 0
