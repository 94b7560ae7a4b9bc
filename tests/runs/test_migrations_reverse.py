"""A workspace's runs migrations go back as they came: an operator rolling a bad deploy back
(`migrate_schemas runs <earlier> --schema <workspace>`) gets the earlier schema, its usage ledger
with it, and migrating forward again gives the same totals."""

import uuid

from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.billing.models import UsageMonth
from apps.billing.rls import usage_scope
from apps.runs.usage import usage_record
from apps.tenants.services import tenant_provision


def migrate(schema: str, target: str) -> None:
    connection.set_schema_to_public()
    call_command("migrate_schemas", "runs", target, schema_name=schema, tenant=True, interactive=False, verbosity=0)


def runs_migrations(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {schema}.django_migrations WHERE app = 'runs' ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


def month_totals(tenant_id: int) -> list[tuple[str, int, int]]:
    with usage_scope(tenant_id):
        return sorted(UsageMonth.objects.filter(tenant_id=tenant_id).values_list("project", "calls", "tokens"))


def test_the_runs_migrations_reverse_with_the_usage_ledger_and_forward_again(db):
    """0006 moved the usage ledger to the public schema and dropped the workspace's append-only
    table; its reverse was a no-op, so the table came back empty and without its triggers, and
    0002's reverse then failed ("trigger runs_usagerecord_append_only does not exist"): no
    workspace could go back past it. Reversed now, the table holds the workspace's ledger rows
    again, append-only, and migrating forward again leaves the month totals as they were."""
    tenant = tenant_provision(slug="rollback", name="Rollback", owner_email="o@rollback.test", method="migrate").tenant
    with schema_context("rollback"):
        usage_record(tenant_id=tenant.pk, project="billing", agent="a", run_id=uuid.uuid4(), step=1, provider="s",
                     model="m", input_tokens=240, output_tokens=10)  # fmt: skip
    latest = runs_migrations("rollback")[-1]
    totals = month_totals(tenant.pk)
    assert totals == [("", 1, 250), ("billing", 1, 250)]

    migrate("rollback", "0005_usage_cost")
    with connection.cursor() as cursor:
        cursor.execute("SELECT project, input_tokens, output_tokens FROM rollback.runs_usagerecord")
        assert cursor.fetchall() == [("billing", 240, 10)]
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'rollback.runs_usagerecord'::regclass ORDER BY tgname"
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "runs_usagerecord_append_only",
            "runs_usagerecord_no_truncate",
        ]
    assert month_totals(tenant.pk) == [("", 0, 0), ("billing", 0, 0)]

    migrate("rollback", "0001_initial")
    assert runs_migrations("rollback") == ["0001_initial"]

    migrate("rollback", latest)
    assert runs_migrations("rollback")[-1] == latest
    assert month_totals(tenant.pk) == totals
