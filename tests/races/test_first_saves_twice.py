"""The same first save sent twice at once (a double-clicked form, a client retrying a PUT it timed
out on while the first is still in flight), through real threads on their own PostgreSQL
connections: both once found no row to lock, and met between their read and their write. They
take turns now (an advisory lock named by what they save, foundry/db/locks.py): the rendezvous
between read and write is given up on, and the second finds what the first saved."""

from django_tenants.utils import schema_context

from apps.billing.models import Budget
from apps.billing.services import budget_set
from apps.providers.models import ProviderCredential
from apps.providers.services import credential_set
from tests.conftest import audit_events, tenant_user
from tests.races.conftest import Rendezvous, run_together


def test_the_same_first_budget_set_twice_at_once_records_one_budget_set(fresh_tenant, django_db_blocker, monkeypatch):
    """Where the workspace has no budget yet: the second sets it again as it is, which records
    nothing (as two removals at once record one `budget.delete`); it recorded a second `budget.set`."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        meet = Rendezvous(timeout=1.0)
        manager = Budget.objects
        upsert = manager.update_or_create

        def upsert_meeting(*args, **kwargs):  # both found no budget, neither wrote one yet
            meet.wait()
            return upsert(*args, **kwargs)

        monkeypatch.setattr(manager, "update_or_create", upsert_meeting)

        def put():
            with schema_context(tenant.schema_name):
                return budget_set(actor=owner, tenant_id=tenant.pk, project="", monthly_tokens=50_000)

        results = run_together(put, put)
        sets = audit_events(tenant.schema_name, action="budget.set")
    assert all(exc is None for _, exc in results), results
    assert len(sets) == 1, f"{len(sets)} budget.set events for one budget set once: {[e.data for e in sets]}"


def test_the_same_first_provider_put_twice_at_once_is_not_a_conflict(fresh_tenant, django_db_blocker, monkeypatch):
    """`PUT /api/v1/providers/openai` "creates or replaces" (docs/providers.md), and PUT is
    idempotent (RFC 9110 9.2.2): the second saves over the first, as two first SSO saves do. It
    answered 409 `credential_conflict` ("Someone else saved this provider..."), which the console
    showed the admin whose save had worked."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        meet = Rendezvous(timeout=1.0)
        save = ProviderCredential.save

        def save_meeting(self, *args, **kwargs):  # both found no credential, neither saved yet
            meet.wait()
            return save(self, *args, **kwargs)

        monkeypatch.setattr(ProviderCredential, "save", save_meeting)

        def put():
            with schema_context(tenant.schema_name):
                return credential_set(actor=owner, provider="openai", api_key="sk-test-0123456789abcdef").pk

        results = run_together(put, put)
        with schema_context(tenant.schema_name):
            rows = ProviderCredential.objects.filter(provider="openai").count()
    assert rows == 1
    errors = [exc for _, exc in results if exc is not None]
    assert not errors, f"a repeated identical PUT was refused: {[(getattr(e, 'code', ''), str(e)) for e in errors]}"
