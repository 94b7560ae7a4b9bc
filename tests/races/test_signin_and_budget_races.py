"""A sign-in racing the member's removal, and two removals of one budget at once: each through real
threads on their own PostgreSQL connections (committed data)."""

import threading

from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.backends import PasswordBackend
from apps.accounts.models import User
from apps.accounts.services import member_remove
from apps.billing.models import Budget
from apps.billing.services import budget_set
from tests.conftest import PASSWORD, audit_events, host_of, tenant_user
from tests.races.conftest import Rendezvous, run_together


def test_a_password_sign_in_racing_the_members_removal_is_refused_not_a_500(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """An owner removes a member at the moment that member signs in (their password already
    checked, the session not yet made). PRODUCT.md: "no 500 on any input"; the removal wins, so the
    sign-in is refused like any other (the sign-in page again, or the login page), and the trail
    holds no `auth.login` of a member who no longer exists (Django's `update_last_login` saved
    `last_login` with update_fields on the deleted row: DatabaseError, a 500)."""
    tenant = fresh_tenant
    viewer_email = f"viewer@{tenant.slug}.test"
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        viewer = tenant_user(tenant, viewer_email)
        can = PasswordBackend.user_can_authenticate
        removed = []

        def remove():
            with schema_context(tenant.schema_name):
                member_remove(actor=owner, member=viewer)

        def can_then_removed(self, user):  # the sign-in has read the member: the removal commits now
            allowed = can(self, user)
            if not removed:
                removed.append(True)
                thread = threading.Thread(target=lambda: run_together(remove))
                thread.start()
                thread.join(30)
            return allowed

        monkeypatch.setattr(PasswordBackend, "user_can_authenticate", can_then_removed)
        client = Client(HTTP_HOST=host_of(tenant), raise_request_exception=False)
        response = client.post("/login/", {"username": viewer_email, "password": PASSWORD})
        with schema_context(tenant.schema_name):
            gone = not User.objects.filter(email=viewer_email).exists()
        logins = audit_events(tenant.schema_name, action="auth.login")
    assert removed and gone, "the removal did not run"
    assert response.status_code < 500, f"a sign-in racing the member's removal answered {response.status_code}"
    assert not [e for e in logins if e.actor_id == f"user:{viewer.pk}"], "auth.login recorded for a removed member"


def test_removing_a_budget_twice_at_once_records_one_budget_delete(fresh_tenant, django_db_blocker, monkeypatch):
    """Two admins remove the same budget at once (PUT /api/v1/budgets with both amounts null,
    docs/billing.md: events `budget.delete`). One budget was deleted, so the trail must say so once;
    the other removal deletes nothing and must record nothing (as `credential_delete` and
    `audit_sink_delete` do, which lock the row and find it gone)."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        with schema_context(tenant.schema_name):
            budget_set(actor=owner, tenant_id=tenant.pk, project="", monthly_tokens=1000)
        meet = Rendezvous()
        delete = Budget.delete

        def delete_meeting(self, *args, **kwargs):  # both read the budget, neither deleted it yet
            meet.wait()
            return delete(self, *args, **kwargs)

        monkeypatch.setattr(Budget, "delete", delete_meeting)

        def remove():
            with schema_context(tenant.schema_name):
                return budget_set(actor=owner, tenant_id=tenant.pk, project="")

        results = run_together(remove, remove)
        deletes = audit_events(tenant.schema_name, action="budget.delete")
    # Serialised by the budget's row lock: the second removal waits, then finds nothing to remove.
    assert all(exc is None for _, exc in results), results
    assert len(deletes) == 1, f"{len(deletes)} budget.delete events for one budget removed"
