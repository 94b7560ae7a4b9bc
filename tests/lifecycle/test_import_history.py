"""An import's changes to rows that keep model history (docs/audit.md, "Model history") are in
it: the tenant's settings taken from the archive (a raw UPDATE, after its creation was recorded
as plan free and no networks) and the audit sinks it creates (INSERT ... SELECT) had none.
Found by a review."""

import io
import uuid

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django_tenants.utils import schema_context

from apps.lifecycle.archive import tenant_import
from apps.tenants.models import Tenant
from tests.lifecycle.test_archive import archive_of, with_member
from tests.lifecycle.test_archive import signing as signing
from tests.lifecycle.test_archive import stocked as stocked
from tests.lifecycle.test_archive_bad_input import tenant_row_edit


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _history_values(tenant: Tenant) -> dict:
    """The tenant's fields as its model history tells them: every entry's changes replayed."""
    connection.set_schema_to_public()
    values: dict = {}
    for entry in LogEntry.objects.get_for_object(tenant).order_by("timestamp", "pk"):
        for field, change in (entry.changes or {}).items():
            values[field] = change[-1] if isinstance(change, list) else change
    return values


def test_the_settings_an_import_takes_from_the_archive_are_in_the_tenants_model_history(acme):
    """The plan, the networks its http tools may reach (an operator's setting) and a limit
    override the archive brings are what the tenant's history says it has."""
    crafted = with_member(
        archive_of(acme)[0],
        "public/tenants_tenant.ndjson",
        tenant_row_edit(
            lambda r: r.update(plan="enterprise", http_allowed_networks=["10.20.0.0/16"], concurrent_runs_override=7)
        ),
    )
    new = tenant_import(io.BytesIO(crafted), slug=f"h{uuid.uuid4().hex[:10]}", keep_networks=True)
    row = Tenant.objects.get(pk=new.pk)
    assert (row.plan, row.http_allowed_networks, row.concurrent_runs_override) == ("enterprise", ["10.20.0.0/16"], 7)
    history = _history_values(row)
    told = (history.get("plan"), history.get("http_allowed_networks"), history.get("concurrent_runs_override"))
    assert told == ("enterprise", str(["10.20.0.0/16"]), "7") or told == ("enterprise", ["10.20.0.0/16"], 7), (
        f"the model history of the imported tenant says plan/networks/override {told}; the row has"
        f" {(row.plan, row.http_allowed_networks, row.concurrent_runs_override)}"
    )


def test_the_audit_sinks_an_import_creates_are_in_their_model_history(stocked):
    """Each sink the import creates has a creation entry in `public`, as the docs say of the
    platform's changes to sinks."""
    from apps.audit.models import AuditSink
    from apps.audit.scope import rls_scope

    new = tenant_import(io.BytesIO(archive_of(stocked)[0]), slug=f"h{uuid.uuid4().hex[:10]}")
    with rls_scope(new.pk):
        sinks = {str(pk) for pk in AuditSink.objects.filter(tenant_id=new.pk).values_list("pk", flat=True)}
    assert sinks
    found = set()
    for schema in ("public", new.schema_name):
        with schema_context(schema):
            found |= set(
                LogEntry.objects.get_for_model(AuditSink)
                .filter(object_pk__in=sinks)
                .values_list("object_pk", flat=True)
            )
    assert found == sinks, f"imported sinks {sorted(sinks)} have no model history (entries for {sorted(found)})"
