"""Single sign-on configuration against concurrent changes (real threads, own connections,
committed data; tests/races/conftest.py): its checks hold the owners they read (owners_hold, as
removing, demoting and erasing an owner do), two first saves take turns, and a first SSO sign-in
and an admin adding the same address take turns too."""

import threading

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove, member_role_change
from apps.identity import services
from apps.identity.models import SsoConfiguration
from apps.identity.services import sso_configure
from tests.conftest import PASSWORD, tenant_user
from tests.identity.conftest import SECRET
from tests.races.conftest import Rendezvous, jit_sso_configuration, run_together

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture(autouse=True)
def encryption_key(settings):
    """The SSO client secret is stored encrypted."""
    settings.FOUNDRY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


def _second_owner(tenant) -> User:
    with schema_context(tenant.schema_name):
        return User.objects.create_user(f"second@{tenant.slug}.test", PASSWORD, role=Role.OWNER)


@pytest.mark.parametrize("change", ["remove", "demote"])
def test_break_glass_owner_removed_while_sso_required_is_being_saved_leaves_no_lockout(
    change, fresh_tenant, idp, django_db_blocker, monkeypatch
):
    """docs/sso.md: with SSO required the break-glass owner "cannot be demoted, removed or erased
    meanwhile". Owner B saves "SSO required, break-glass = A" while another request removes
    (or demotes) A. Whatever order they commit in, the workspace never ends up requiring SSO
    with a break-glass owner who is no longer an active owner."""
    tenant = fresh_tenant
    glass_email = f"owner@{tenant.slug}.test"
    with django_db_blocker.unblock():
        second = _second_owner(tenant)
        in_discovery = threading.Event()
        changed = threading.Event()
        discover = services.sso_discover

        def discover_slowly(issuer):  # the saver is past its checks of the break-glass owner
            in_discovery.set()
            changed.wait(5)  # a fixed product makes the change wait for the save instead
            return discover(issuer)

        monkeypatch.setattr(services, "sso_discover", discover_slowly)

        def save():
            with schema_context(tenant.schema_name):
                return sso_configure(
                    actor=second,
                    issuer=idp.issuer,
                    client_id="foundry",
                    client_secret=SECRET,
                    sso_required=True,
                    break_glass_email=glass_email,
                ).pk

        def take_away():
            assert in_discovery.wait(20)
            try:
                with schema_context(tenant.schema_name):
                    glass = User.objects.get(email=glass_email)
                    if change == "remove":
                        member_remove(actor=second, member=glass)
                    else:
                        member_role_change(actor=second, member=glass, role=Role.ADMIN)
            finally:
                changed.set()

        results = run_together(save, take_away)
        with schema_context(tenant.schema_name):
            config = SsoConfiguration.objects.filter(pk=1).first()
            glass_ok = User.objects.filter(email=glass_email, role=Role.OWNER, is_active=True).exists()
    unexpected = [e for _, e in results if e is not None and not hasattr(e, "code") and not hasattr(e, "messages")]
    assert not unexpected, results
    assert not (config is not None and config.sso_required and not glass_ok), (
        f"SSO is required with break-glass owner {glass_email}, who was {change}d at the same moment "
        f"(outcomes: save {results[0]!r}, {change} {results[1]!r})"
    )


def test_two_first_sso_configurations_at_once_are_not_a_database_error(
    fresh_tenant, idp, django_db_blocker, monkeypatch
):
    """Two owners (or a double-submitted form / a retried PUT /api/v1/sso) saving the workspace's
    first SSO configuration at once: the second waits for the first and saves over it (no
    IntegrityError, a 500)."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        second = _second_owner(tenant)
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        meet = Rendezvous()
        discover = services.sso_discover

        def discover_meeting(issuer):  # both found no configuration, neither saved yet
            meet.wait()
            return discover(issuer)

        monkeypatch.setattr(services, "sso_discover", discover_meeting)

        def save(actor, client_id):
            with schema_context(tenant.schema_name):
                return sso_configure(actor=actor, issuer=idp.issuer, client_id=client_id, client_secret=SECRET).pk

        results = run_together(lambda: save(owner, "first"), lambda: save(second, "second"))
        with schema_context(tenant.schema_name):
            rows = SsoConfiguration.objects.count()
    assert rows == 1
    db_errors = [e for _, e in results if isinstance(e, IntegrityError)]
    assert not db_errors, f"a database error reached the caller (a 500): {db_errors!r}"


def test_sso_disabled_while_the_last_password_owner_is_removed_leaves_an_owner_who_can_sign_in(
    fresh_tenant, idp, django_db_blocker, monkeypatch
):
    """docs/sso.md: disabling SSO is refused (`owner_password_required`) while no active owner can
    sign in with a password — an owner who joined through SSO has none and cannot be sent a link.
    Owner P (password) disables SSO while owner S (SSO only) removes P at the same moment: one
    waits for the other, and the workspace is never left with SSO gone and only S."""
    from django.utils import timezone

    from apps.identity.models import ExternalIdentity
    from apps.identity.services import sso_disable

    tenant = fresh_tenant
    password_email = f"owner@{tenant.slug}.test"
    with django_db_blocker.unblock():
        with schema_context(tenant.schema_name):
            sso_configure(
                actor=tenant_user(tenant, password_email), issuer=idp.issuer, client_id="foundry", client_secret=SECRET
            )
            sso_owner = User.objects.create_user(f"sso-owner@{tenant.slug}.test", None, role=Role.OWNER)
            sso_owner.last_login = timezone.now()
            sso_owner.save(update_fields=["last_login"])
            ExternalIdentity.objects.create(issuer=idp.issuer, subject="sub-sso-owner", user=sso_owner)
        password_owner = tenant_user(tenant, password_email)
        checked = threading.Event()
        removed = threading.Event()
        password_owners = services._password_owners

        def password_owners_then_wait():  # the disable has counted P as a password owner
            answer = password_owners()
            checked.set()
            removed.wait(5)
            return answer

        monkeypatch.setattr(services, "_password_owners", password_owners_then_wait)

        def disable():
            with schema_context(tenant.schema_name):
                sso_disable(actor=password_owner)

        def remove():
            assert checked.wait(20)
            try:
                with schema_context(tenant.schema_name):
                    member_remove(actor=sso_owner, member=User.objects.get(email=password_email))
            finally:
                removed.set()

        results = run_together(disable, remove)
        with schema_context(tenant.schema_name):
            sso_left = SsoConfiguration.objects.filter(pk=1).exists()
            owners = list(User.objects.filter(role=Role.OWNER, is_active=True))
    assert not [e for _, e in results if isinstance(e, IntegrityError)], results
    can_sign_in = sso_left or any(o.has_usable_password() for o in owners)
    assert can_sign_in, (
        f"SSO was disabled and the last owner with a password removed at the same moment: the owners left "
        f"({[o.email for o in owners]}) have no way to sign in (disable {results[0]!r}, remove {results[1]!r})"
    )


def test_a_first_sso_sign_in_while_an_admin_adds_the_same_address_is_not_a_database_error(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """An admin adds jit@… as a member while that person finishes their first sign-in through the
    provider (just-in-time provisioning on). One after the other, the sign-in links the member the
    admin added (the address is verified); at once, they take turns on the address's advisory lock
    (member_add takes the one sign-ins take), so the sign-in never meets the unique index (a 500
    on /sso/callback/)."""

    from apps.accounts.services import member_add
    from apps.identity.login import SsoLoginFailed, sso_login_resolve

    tenant = fresh_tenant
    issuer = "https://idp.example.test"
    email = f"jit@{tenant.slug}.test"
    claims = {"sub": "subject-7", "email": email, "email_verified": True, "name": "Jit"}
    config = jit_sso_configuration(issuer)
    with django_db_blocker.unblock():
        owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
        past_check = threading.Event()
        added = threading.Event()
        signing_in = threading.local()
        manager = type(User.objects)
        create_user = manager.create_user

        def create_user_ordered(self, *args, **kwargs):
            if getattr(signing_in, "yes", False):
                past_check.set()  # the sign-in found no member with the address
                added.wait(5)  # the admin's add commits first (a fixed product makes it wait instead)
            return create_user(self, *args, **kwargs)

        monkeypatch.setattr(manager, "create_user", create_user_ordered)

        def sign_in():
            signing_in.yes = True
            with schema_context(tenant.schema_name):
                return sso_login_resolve(config, dict(claims)).pk

        def add():
            assert past_check.wait(20)
            try:
                with schema_context(tenant.schema_name):
                    return member_add(actor=owner, email=email, role=Role.VIEWER).pk
            finally:
                added.set()

        results = run_together(sign_in, add)
        with schema_context(tenant.schema_name):
            members = User.objects.filter(email=email).count()
    assert members == 1
    db_errors = [e for _, e in results if isinstance(e, IntegrityError)]
    assert not db_errors, f"a database error reached the caller (a 500 on the SSO callback): {results!r}"
    assert all(e is None or isinstance(e, (SsoLoginFailed, ValidationError)) for _, e in results), results
