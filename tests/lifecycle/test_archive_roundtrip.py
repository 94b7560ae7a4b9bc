"""What an import keeps as its source had it: the model history of its public rows; and what it
leaves behind with the secrets: what the console showed of them (docs/export.md)."""

import io
import uuid

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django_tenants.utils import schema_context

from apps.billing.models import Budget
from apps.billing.rls import usage_scope
from apps.lifecycle.archive import tenant_export, tenant_import
from tests.conftest import client_for
from tests.lifecycle.test_archive import signing, stock  # noqa: F401 — fixture


@pytest.fixture
def stocked(fresh_tenant, db, signing):  # noqa: F811
    stock(fresh_tenant, "alpha")
    return fresh_tenant


def moved(tenant):
    out = io.BytesIO()
    tenant_export(tenant, out)
    return tenant_import(io.BytesIO(out.getvalue()), slug=f"r{uuid.uuid4().hex[:10]}")


def test_a_budgets_model_history_follows_it_into_the_imported_copy(stocked):
    """A budget's history lives in the workspace's schema, keyed by the budget's id; public rows get
    new ids on import, and the copy's history names its budget by the new one (docs/export.md)."""
    budget_type = ContentType.objects.get_for_model(Budget)
    with usage_scope(stocked.pk):
        source_budget = Budget.objects.get(tenant_id=stocked.pk, project="")
    with schema_context(stocked.schema_name):
        source_history = LogEntry.objects.filter(content_type=budget_type, object_pk=str(source_budget.pk)).count()
    assert source_history >= 1  # budget_set recorded it

    new = moved(stocked)
    with usage_scope(new.pk):
        copied = Budget.objects.get(tenant_id=new.pk, project="")
    assert copied.pk != source_budget.pk  # public rows get new ids
    with schema_context(new.schema_name):
        history = LogEntry.objects.filter(content_type__model="budget", object_pk=str(copied.pk)).count()
    assert history == source_history


def test_an_imported_provider_credential_does_not_show_a_key_it_no_longer_has(stocked):
    """A provider's API key is exported empty, and so are its last four: the copy's providers list
    shows no key where it holds none (docs/export.md, "What is not in it")."""
    new = moved(stocked)
    response = client_for(new, f"owner@{stocked.slug}.test").get("/api/v1/providers")
    assert response.status_code == 200, response.content[:300]
    openai = next(c for c in response.json()["providers"] if c["provider"] == "openai")
    assert "6789" not in openai["api_key_masked"], openai
