"""A member demoted or removed while their own request is in flight acts no more with the rights
it read at its start: once the owners are held (`owners_hold`), the acting member is read again,
locked (`actor_now`), and the change refused if their role no longer allows it. Before, the
request's in-memory User was checked: two owners taking each other away at once both went."""

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connections
from django_tenants.utils import schema_context

import apps.accounts.services as account_services
from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove, member_role_change
from tests.conftest import PASSWORD, tenant_user


def test_two_owners_demoting_each_other_at_once_do_not_both_lose_owner(fresh_tenant, django_db_blocker, monkeypatch):
    """docs/roles.md: "Only owners grant or revoke the owner role". Owner Y demotes owner B while B
    demotes Y, B's request authenticated before Y's committed: B's is refused, Y stays an owner (a
    compromised owner being locked out does not take the legitimate one with them)."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            User.objects.create_user(f"y@{tenant.slug}.test", PASSWORD, role=Role.OWNER)
            User.objects.create_user(f"b@{tenant.slug}.test", PASSWORD, role=Role.OWNER)
        y = tenant_user(tenant, f"y@{tenant.slug}.test")
        b = tenant_user(tenant, f"b@{tenant.slug}.test")  # as B's request authenticated it

        demoted = threading.Event()
        hold = account_services.owners_hold

        def owners_hold_after_demotion():
            # B's request: past its permission check, it reaches the owners' lock only once Y's
            # demotion of B has committed (a slow moment of B's request).
            if threading.current_thread().name == "b":
                demoted.wait(5)
            return hold()

        monkeypatch.setattr(account_services, "owners_hold", owners_hold_after_demotion)
        errors = {}

        def act(name, actor, target):
            try:
                with schema_context(tenant.schema_name):
                    member_role_change(actor=actor, member=target, role=Role.ADMIN)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors[name] = exc
            finally:
                if name == "y":
                    demoted.set()
                connections.close_all()

        tb = threading.Thread(target=act, args=("b", b, y), name="b")
        ty = threading.Thread(target=act, args=("y", y, b), name="y")
        tb.start()
        ty.start()
        ty.join(20)
        tb.join(20)
        with schema_context(tenant.schema_name):
            roles = {u.email.split("@")[0]: u.role for u in User.objects.filter(email__in=[y.email, b.email])}
    assert "y" not in errors and isinstance(errors.get("b"), PermissionDenied), errors
    assert roles["y"] == Role.OWNER, (
        f"B, demoted to {roles['b']} by Y, then demoted Y with the owner's rights B no longer held: {roles}, "
        f"errors {errors}"
    )


def test_a_member_removed_while_their_request_is_in_flight_does_not_remove_the_owner_who_removed_them(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """Once removed, a member does nothing more in the workspace: owner Y removes owner B while B
    removes Y, B's request authenticated before the removal committed. B's is refused; Y stays."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            User.objects.create_user(f"y@{tenant.slug}.test", PASSWORD, role=Role.OWNER)
            User.objects.create_user(f"b@{tenant.slug}.test", PASSWORD, role=Role.OWNER)
        y = tenant_user(tenant, f"y@{tenant.slug}.test")
        b = tenant_user(tenant, f"b@{tenant.slug}.test")  # as B's request authenticated it

        removed = threading.Event()
        hold = account_services.owners_hold

        def owners_hold_after_removal():
            if threading.current_thread().name == "b":
                removed.wait(5)  # B's request reaches the lock once Y's removal of B committed
            return hold()

        monkeypatch.setattr(account_services, "owners_hold", owners_hold_after_removal)
        errors = {}

        def act(name, actor, target):
            try:
                with schema_context(tenant.schema_name):
                    member_remove(actor=actor, member=target)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors[name] = exc
            finally:
                if name == "y":
                    removed.set()
                connections.close_all()

        tb = threading.Thread(target=act, args=("b", b, y), name="b")
        ty = threading.Thread(target=act, args=("y", y, b), name="y")
        tb.start()
        ty.start()
        ty.join(20)
        tb.join(20)
        with schema_context(tenant.schema_name):
            left = sorted(User.objects.filter(email__in=[y.email, b.email]).values_list("email", flat=True))
    assert "y" not in errors and isinstance(errors.get("b"), PermissionDenied), errors
    assert left == [y.email], f"members left of Y and B: {left}; errors {errors} (B, removed, removed Y)"


def test_an_actor_read_before_their_demotion_committed_is_judged_as_they_stand_now(acme, monkeypatch):
    """Sequentially, the same: the request's User still says owner, the database says admin."""
    from apps.accounts.services import member_add
    from apps.lifecycle import exports
    from apps.lifecycle.tasks import export_tenant
    from apps.tokens.models import ApiToken
    from apps.tokens.services import token_issue, token_revoke

    monkeypatch.setattr(export_tenant, "apply_async", lambda *a, **k: None)
    with schema_context(acme.schema_name):
        owner = User.objects.create_user("stale@acme.test", PASSWORD, role=Role.OWNER)
        issued = token_issue(
            actor=tenant_user(acme, "owner@acme.test"), name="an owner's", role=Role.OWNER, scopes=["read"]
        )
        User.objects.filter(pk=owner.pk).update(role=Role.ADMIN)  # committed by another request
        with pytest.raises(PermissionDenied):
            member_add(actor=owner, email="new-owner@acme.test", role=Role.OWNER)
        with pytest.raises(PermissionDenied):
            token_revoke(actor=owner, token=issued.token)
        assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is None
        assert exports.export_start(actor=owner).password_hashes is False  # an admin's export
        User.objects.filter(pk=owner.pk).delete()  # removed meanwhile
        with pytest.raises(PermissionDenied):
            member_add(actor=owner, email="new-viewer@acme.test", role=Role.VIEWER)
        assert not User.objects.filter(email__startswith="new-").exists()
