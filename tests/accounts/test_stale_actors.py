"""Consequential services judge the acting member (or token) as they stand when the change is
recorded (`allowed_now`), not as their request read them at its start. Sequential, as
tests/accounts/test_actor_now.py: the actor is read as the request did, then demoted, removed or
revoked by a committed change of another request, then the service is called with the stale
actor; each is refused (PermissionDenied) and changes nothing. Before, each of these completed
(found by the actor re-check review): starting runs, removing a budget, publishing and deploying,
exporting the workspace, pointing an audit sink at a receiver, setting a provider key,
configuring or disabling SSO, lifting a legal hold, scheduling the workspace's deletion, issuing
a token."""

import pytest
from django.core.exceptions import PermissionDenied
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.tenants.models import Tenant
from tests.conftest import PASSWORD, tenant_user
from tests.identity.conftest import configure, idp, loopback_allowed, stored  # noqa: F401 - fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 - autouse: an encryption key of the test's own
from tests.runs.conftest import FINANCE, TRIAGE, triage  # noqa: F401 - fixture


def _stale(tenant, email: str, role: str, *, then: str | None) -> User:
    """A member of `role`, read as their request read them; then (committed by another request)
    demoted to `then`, or removed (`then` None)."""
    with schema_context(tenant.schema_name):
        member = User.objects.create_user(email, PASSWORD, role=role)
    stale = tenant_user(tenant, email)
    with schema_context(tenant.schema_name):
        if then is None:
            User.objects.filter(pk=member.pk).delete()
        else:
            User.objects.filter(pk=member.pk).update(role=then)
    return stale


# --- runs: spending money --------------------------------------------------------------------


@pytest.mark.parametrize("then", [Role.VIEWER, None], ids=["demoted", "removed"])
def test_run_start_by_a_member_demoted_or_removed_meanwhile_is_refused(acme, triage, then):  # noqa: F811
    from apps.runs.models import Run
    from apps.runs.services import run_start

    stale = _stale(acme, "dev@acme.test", Role.DEVELOPER, then=then)
    with schema_context("acme"):
        before = Run.objects.count()
        with pytest.raises(PermissionDenied):
            run_start(actor=stale, agent=triage, input="Look up the invoices.")
        assert Run.objects.count() == before


def test_run_start_by_a_token_revoked_meanwhile_is_refused(acme, triage):  # noqa: F811
    from apps.runs.models import Run
    from apps.runs.services import run_start
    from apps.tokens.models import ApiToken, TokenPrincipal
    from apps.tokens.services import token_issue

    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        issued = token_issue(actor=owner, name="ci", role=Role.OPERATOR, scopes=["read", "run"])
        principal = TokenPrincipal(ApiToken.objects.get(pk=issued.token.pk))  # as the request authenticated it
        from django.utils import timezone

        ApiToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now())  # revoked meanwhile
        before = Run.objects.count()
        with pytest.raises(PermissionDenied):
            run_start(actor=principal, agent=triage, input="Look up the invoices.")
        assert Run.objects.count() == before


def test_budget_removed_by_an_admin_demoted_meanwhile_is_refused(acme):
    from apps.billing.models import Budget
    from apps.billing.rls import usage_scope
    from apps.billing.services import budget_set

    budget_set(actor="test", tenant_id=acme.pk, project="", monthly_tokens=1000)
    stale = _stale(acme, "adm@acme.test", Role.ADMIN, then=Role.DEVELOPER)
    with schema_context("acme"), pytest.raises(PermissionDenied):
        budget_set(actor=stale, tenant_id=acme.pk, project="")  # no amounts: removes the budget
    with usage_scope(acme.pk):
        assert Budget.objects.filter(tenant_id=acme.pk, project="").exists()


# --- catalog: demoted, not removed (actor_now is called, but the permission is not judged again)


def test_deploy_by_a_developer_demoted_meanwhile_is_refused(acme):
    from apps.catalog.services import agent_deploy, version_publish

    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        version_publish(actor=owner, source=FINANCE, message="test")
        version = version_publish(actor=owner, source=TRIAGE, message="test").version
    stale = _stale(acme, "dev@acme.test", Role.DEVELOPER, then=Role.VIEWER)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            agent_deploy(actor=stale, document=version.document, number=version.number)
        version.document.refresh_from_db()
        assert version.document.live_id is None


def test_publish_by_a_developer_demoted_meanwhile_is_refused(acme):
    from apps.catalog.models import Document
    from apps.catalog.services import version_publish

    stale = _stale(acme, "dev@acme.test", Role.DEVELOPER, then=Role.VIEWER)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            version_publish(actor=stale, source=FINANCE, message="test")
        assert not Document.objects.filter(name="finance", versions__isnull=False).exists()


# --- exfiltration ------------------------------------------------------------------------------


def test_export_by_an_admin_demoted_meanwhile_is_refused(acme, monkeypatch):
    from apps.lifecycle import exports
    from apps.lifecycle.models import Export
    from apps.lifecycle.tasks import export_tenant

    monkeypatch.setattr(export_tenant, "apply_async", lambda *a, **k: None)
    stale = _stale(acme, "adm@acme.test", Role.ADMIN, then=Role.VIEWER)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            exports.export_start(actor=stale)  # a viewer exports the whole workspace
        assert not Export.objects.exists()


@pytest.mark.parametrize("then", [Role.DEVELOPER, None], ids=["demoted", "removed"])
def test_audit_sink_set_by_an_admin_demoted_or_removed_meanwhile_is_refused(acme, then):
    from apps.audit.delivery import SinkFields, audit_sink_list, audit_sink_set

    stale = _stale(acme, "adm@acme.test", Role.ADMIN, then=then)
    with schema_context("acme"), pytest.raises(PermissionDenied):
        # the whole chain (cursor 0) pushed to a receiver of the former admin's choosing
        audit_sink_set(
            tenant=acme, name="mine", fields=SinkFields(kind="syslog", host="siem.example.com", cursor=0), actor=stale
        )
    assert audit_sink_list(acme.pk) == []


def test_provider_credential_set_by_an_admin_removed_meanwhile_is_refused(acme):
    from apps.providers.models import ProviderCredential
    from apps.providers.services import credential_set

    stale = _stale(acme, "adm@acme.test", Role.ADMIN, then=None)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            credential_set(actor=stale, provider="openai", api_key="sk-their-own-key-000000000000")
        assert not ProviderCredential.objects.exists()


# --- disabling controls, taking over sign-in, destroying the workspace -------------------------


def test_sso_configure_by_an_owner_demoted_meanwhile_is_refused(acme, idp, loopback_allowed):  # noqa: F811
    stale = _stale(acme, "o2@acme.test", Role.OWNER, then=Role.ADMIN)
    with schema_context("acme"):
        from apps.identity.services import sso_configure

        with pytest.raises(PermissionDenied):
            # an identity provider of their choosing: it links members, owners included, by email
            sso_configure(
                actor=stale, issuer=idp.issuer, client_id="x", client_secret="oidc-client-secret-5f4e3d2c1b0a9f8e"
            )
    assert stored(acme) is None


def test_sso_disable_by_an_owner_demoted_meanwhile_is_refused(acme, idp, loopback_allowed):  # noqa: F811
    configure(acme, idp, sso_required=True, break_glass_email="owner@acme.test")
    stale = _stale(acme, "o2@acme.test", Role.OWNER, then=Role.ADMIN)
    with schema_context("acme"):
        from apps.identity.services import sso_disable

        with pytest.raises(PermissionDenied):
            sso_disable(actor=stale)
    assert stored(acme) is not None


def test_legal_hold_lifted_by_an_owner_demoted_meanwhile_is_refused(acme):
    from apps.lifecycle.retention import retention_policy_get, retention_policy_set

    with schema_context("acme"):
        retention_policy_set(actor=tenant_user(acme, "owner@acme.test"), audit_legal_hold=True)
    stale = _stale(acme, "o2@acme.test", Role.OWNER, then=Role.ADMIN)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            retention_policy_set(actor=stale, audit_legal_hold=False, audit_days=1)
        assert retention_policy_get().audit_legal_hold is True


def test_workspace_deletion_by_an_owner_demoted_meanwhile_is_refused(acme):
    from apps.lifecycle.deletion import tenant_deletion_schedule

    stale = _stale(acme, "o2@acme.test", Role.OWNER, then=Role.ADMIN)
    with schema_context("acme"), pytest.raises(PermissionDenied):
        tenant_deletion_schedule(tenant=acme, actor=stale)
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE


def test_token_issued_by_an_admin_demoted_meanwhile_is_refused(acme):
    """Managing API tokens is settings.manage (admins, owners). `_issuing_member` re-reads the
    member but only compares the new token's role with theirs: an admin demoted to developer
    still mints a (developer) token."""
    from apps.tokens.models import ApiToken
    from apps.tokens.services import token_issue

    stale = _stale(acme, "adm@acme.test", Role.ADMIN, then=Role.DEVELOPER)
    with schema_context("acme"):
        with pytest.raises(PermissionDenied):
            token_issue(actor=stale, name="mine", role=Role.DEVELOPER, scopes=["read", "write", "run"])
        assert not ApiToken.objects.filter(name="mine").exists()
