"""A console refusal by a service's own rule (an admin adding or removing an owner) is one
access.denied event and a 403, like the permission matrix's refusals: require_permission's
wrapper answers every PermissionDenied its view lets through (apps/accounts/access.py)."""

from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from tests.audit.watch import Watch, describe
from tests.conftest import client_for, tenant_user


def _denials(watch: Watch) -> list:
    return [e for e in watch.new("acme") if e.action == "access.denied"]


def test_an_admin_adding_an_owner_in_the_console_is_audited_as_denied(acme):
    admin = tenant_user(acme, "admin@acme.test")
    watch = Watch()
    response = client_for(acme, "admin@acme.test").post(
        "/members/add/", {"email": "new-owner@acme.test", "role": Role.OWNER, "full_name": "X"}
    )
    assert response.status_code == 403, response.status_code
    with schema_context(acme.schema_name):
        assert not User.objects.filter(email="new-owner@acme.test").exists()
    denied = _denials(watch)
    assert len(denied) == 1, f"expected one access.denied, got {describe(watch.new('acme'))}"
    assert denied[0].actor_id == f"user:{admin.pk}"


def test_an_admin_removing_an_owner_in_the_console_is_audited_as_denied(acme):
    admin = tenant_user(acme, "admin@acme.test")
    owner = tenant_user(acme, "owner@acme.test")
    assert owner.role == Role.OWNER
    watch = Watch()
    response = client_for(acme, "admin@acme.test").post(f"/members/{owner.pk}/remove/")
    assert response.status_code == 403, response.status_code
    denied = _denials(watch)
    assert len(denied) == 1, f"expected one access.denied, got {describe(watch.new('acme'))}"
    assert denied[0].actor_id == f"user:{admin.pk}"
