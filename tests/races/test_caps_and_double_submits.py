"""Check-then-act gaps: a cap counted before a row is written, and "does it exist yet?" answered
before the row that makes it exist. Each test lines two callers up between the check and the
write (tests/races/conftest.py: Rendezvous), with committed data on real connections."""

import ipaddress

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_add
from apps.audit.delivery import MAX_SINKS, SinkFields, audit_sink_set
from apps.audit.models import AuditSink
from apps.audit.scope import rls_scope
from apps.identity.login import sso_login_resolve
from apps.identity.models import ExternalIdentity
from tests.conftest import tenant_user
from tests.races.conftest import Rendezvous, jit_sso_configuration, run_together

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


def _meet_before(monkeypatch, cls, name: str) -> Rendezvous:
    """Every call of cls.name waits for the other racer first."""
    meet = Rendezvous()
    original = getattr(cls, name)

    def meeting(*args, **kwargs):
        meet.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(cls, name, meeting)
    return meet


def test_two_new_audit_sinks_at_once_never_take_a_workspace_past_max_sinks(
    fresh_tenant, django_db_blocker, settings, monkeypatch
):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK
    tenant = fresh_tenant

    def sink(name: str) -> AuditSink:
        fields = SinkFields(kind="syslog", host="127.0.0.1", port=1514, tls=False)
        return audit_sink_set(tenant=tenant, name=name, fields=fields, actor="test")

    with django_db_blocker.unblock():
        for n in range(MAX_SINKS - 1):
            sink(f"siem-{n}")
        _meet_before(monkeypatch, AuditSink, "save")  # both counted MAX_SINKS - 1, neither saved yet
        results = run_together(lambda: sink("late-a"), lambda: sink("late-b"))
        with rls_scope(tenant.pk):
            count = AuditSink.objects.filter(tenant_id=tenant.pk).count()
    unexpected = [exc for _, exc in results if exc is not None and getattr(exc, "code", "") != "sink_limit"]
    assert not unexpected, unexpected
    assert count <= MAX_SINKS, f"the workspace has {count} audit sinks; at most {MAX_SINKS} are allowed"


def test_the_same_member_added_twice_at_once_is_refused_cleanly_not_a_database_error(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """A double-clicked "Add member" (or two admins adding the same person): the second must get
    the form's `member_exists`, as it does one after the other, not an unhandled IntegrityError (500)."""
    tenant = fresh_tenant
    email = f"twice@{tenant.slug}.test"

    def add():
        with schema_context(tenant.schema_name):
            owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
            return member_add(actor=owner, email=email, role=Role.VIEWER)

    with django_db_blocker.unblock():
        _meet_before(monkeypatch, type(User.objects), "create_user")
        results = run_together(add, add)
        with schema_context(tenant.schema_name):
            members = User.objects.filter(email=email).count()
    errors = [exc for _, exc in results if exc is not None]
    assert members == 1
    assert not [e for e in errors if isinstance(e, IntegrityError)], f"a database error reached the caller: {errors}"
    assert all(isinstance(e, ValidationError) for e in errors), errors


def test_two_first_sso_sign_ins_of_one_person_at_once_both_sign_in(fresh_tenant, django_db_blocker, monkeypatch):
    """Two tabs finishing the same identity provider's sign-in at once (just-in-time provisioning):
    both should sign in as the one member created, not one of them fail on a database error."""
    tenant = fresh_tenant
    issuer = "https://idp.example.test"
    claims = {"sub": "subject-42", "email": f"jit@{tenant.slug}.test", "email_verified": True, "name": "Jit"}
    config = jit_sso_configuration(issuer)

    def sign_in():
        with schema_context(tenant.schema_name):
            return sso_login_resolve(config, dict(claims)).pk

    with django_db_blocker.unblock():
        _meet_before(monkeypatch, type(User.objects), "create_user")  # both found no member yet
        results = run_together(sign_in, sign_in)
        with schema_context(tenant.schema_name):
            members = User.objects.filter(email=claims["email"]).count()
            identities = ExternalIdentity.objects.filter(issuer=issuer, subject=claims["sub"]).count()
    assert (members, identities) == (1, 1)
    errors = [exc for _, exc in results if exc is not None]
    assert not errors, f"a first sign-in failed on: {errors!r}"
    assert results[0][0] == results[1][0]
