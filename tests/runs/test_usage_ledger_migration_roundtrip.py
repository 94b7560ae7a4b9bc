"""runs 0006 (the usage ledger moved to public.billing_usage) reversed and applied again: the
ledger's rows stay (it refuses deletion), and the copy skips the rows it already holds."""

import pytest
from django.core.management import call_command
from django.db import connection

from apps.billing.models import UsageMonth, UsageRecord
from apps.billing.rls import usage_scope
from apps.runs.usage import usage_record


@pytest.mark.django_db
def test_reversing_and_reapplying_runs_0006_does_not_duplicate_ledger_rows(acme):
    """A ledger row of no run (run_id NULL) is in the ledger once, as the month's totals count it."""
    usage_record(
        tenant_id=acme.pk,
        project="p",
        agent="a",
        run_id=None,
        step=None,
        provider="s",
        model="m",
        input_tokens=10,
        output_tokens=5,
    )
    with usage_scope(acme.pk):
        rows_before = UsageRecord.objects.filter(tenant_id=acme.pk).count()
        calls_before = UsageMonth.objects.get(tenant_id=acme.pk, project="").calls

    call_command("migrate_schemas", "runs", "0005", schema_name=acme.schema_name, interactive=False, verbosity=0)
    call_command("migrate_schemas", schema_name=acme.schema_name, interactive=False, verbosity=0)
    connection.set_tenant(acme)

    with usage_scope(acme.pk):
        rows_after = UsageRecord.objects.filter(tenant_id=acme.pk).count()
        calls_after = UsageMonth.objects.get(tenant_id=acme.pk, project="").calls
    assert calls_after == calls_before == 1
    assert rows_after == rows_before == 1
