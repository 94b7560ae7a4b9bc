"""A member demoted or removed while their own request is in flight acts no more with the rights
it read at its start: once the owners are held (`owners_hold`), the acting member is read again,
locked (`actor_now`), and the change refused if their role no longer allows it. Before, the
request's in-memory User was checked: two owners taking each other away at once both went."""

import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_context

import apps.accounts.services as account_services
from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove, member_role_change
from tests.conftest import PASSWORD, tenant_user


@pytest.mark.parametrize("change", ["demote", "remove"])
def test_an_owner_taken_away_while_their_request_runs_takes_no_one_with_them(
    fresh_tenant, django_db_blocker, monkeypatch, change
):
    """docs/roles.md: "Only owners grant or revoke the owner role", and a removed member does
    nothing more. Owner Y demotes (or removes) owner B while B does the same to Y, B's request
    authenticated before Y's committed: B's is refused, Y stays an owner (a compromised owner
    being locked out does not take the legitimate one with them)."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            User.objects.create_user(f"y@{tenant.slug}.test", PASSWORD, role=Role.OWNER)
            User.objects.create_user(f"b@{tenant.slug}.test", PASSWORD, role=Role.OWNER)
        y = tenant_user(tenant, f"y@{tenant.slug}.test")
        b = tenant_user(tenant, f"b@{tenant.slug}.test")  # as B's request authenticated it

        done = threading.Event()
        hold = account_services.owners_hold

        def owners_hold_after_y():
            if threading.current_thread().name == "b":
                done.wait(5)  # B's request reaches the owners' lock once Y's change committed
            return hold()

        monkeypatch.setattr(account_services, "owners_hold", owners_hold_after_y)
        errors = {}

        def act(name, actor, target):
            try:
                with schema_context(tenant.schema_name):
                    if change == "demote":
                        member_role_change(actor=actor, member=target, role=Role.ADMIN)
                    else:
                        member_remove(actor=actor, member=target)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors[name] = exc
            finally:
                if name == "y":
                    done.set()
                connections.close_all()

        threads = [threading.Thread(target=act, args=("b", b, y), name="b")]
        threads.append(threading.Thread(target=act, args=("y", y, b), name="y"))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        with schema_context(tenant.schema_name):
            owners = list(User.objects.filter(role=Role.OWNER, email__in=[y.email, b.email]).values_list("email"))
    assert "y" not in errors and isinstance(errors.get("b"), PermissionDenied), errors
    assert owners == [(y.email,)], owners


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


def test_reissuing_an_owner_link_while_being_demoted_does_not_deadlock(fresh_tenant, django_db_blocker, monkeypatch):
    """A reissue takes the owners first too, as a demotion of its actor does: owner A reissues
    pending owner B's link (B, invited before A, has the lower id) while owner O demotes A. When
    the reissue locked A and then B, and the demotion the owners (O, B) and then A, PostgreSQL
    broke the deadlock by failing one (a 500). Both complete: applied, or refused."""
    tenant = fresh_tenant
    slug = tenant.slug
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            User.objects.create_user(f"b@{slug}.test", None, role=Role.OWNER, invited_at=timezone.now())
            User.objects.create_user(f"a@{slug}.test", PASSWORD, role=Role.OWNER)
        owner = tenant_user(tenant, f"owner@{slug}.test")
        a = tenant_user(tenant, f"a@{slug}.test")
        b = tenant_user(tenant, f"b@{slug}.test")
        assert b.pk < a.pk

        a_holds_itself = threading.Event()
        o_started = threading.Event()
        real_actor_now = account_services.actor_now
        real_member_locked = account_services._member_locked

        def actor_now(actor):
            current = real_actor_now(actor)
            if threading.current_thread().name == "a":
                a_holds_itself.set()
            return current

        def member_locked(member):
            if threading.current_thread().name == "a":
                o_started.wait(5)
                time.sleep(1.0)  # O's demotion is now waiting at owners_hold, holding B
            return real_member_locked(member)

        monkeypatch.setattr(account_services, "actor_now", actor_now)
        monkeypatch.setattr(account_services, "_member_locked", member_locked)
        errors = {}

        def act(name, call):
            try:
                with schema_context(tenant.schema_name):
                    call()
            except (PermissionDenied, ValidationError):
                pass  # a refusal is a fine outcome
            except Exception as exc:  # noqa: BLE001 - reported below
                errors[name] = exc
            finally:
                connections.close_all()

        def reissue():
            account_services.member_invite_reissue(actor=a, member=b, base_url=f"http://{slug}.localhost")

        def demote():
            a_holds_itself.wait(5)
            o_started.set()
            account_services.member_role_change(actor=owner, member=a, role=Role.ADMIN)

        threads = [threading.Thread(target=act, args=("a", reissue), name="a")]
        threads.append(threading.Thread(target=act, args=("o", demote), name="o"))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
