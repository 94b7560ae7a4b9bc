"""A member whom single sign-on settings shut out (no way left to sign in) while their request ran
comes away with no API token: the settings' change revokes only the tokens that exist when it is
saved, so `_issuing_member` (apps/tokens/services.py) reads the settings as they stand, after
sharing their lock, as it honours a removal or a demotion committed meanwhile."""

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.identity.models import ExternalIdentity
from apps.identity.oidc import TenantOIDCBackend
from apps.identity.services import sso_disable
from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import tenant_user
from tests.identity.conftest import configure, idp, loopback_allowed  # noqa: F401 - fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 - autouse

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def _sso_only_admin(tenant, issuer: str, email: str) -> User:
    with schema_context(tenant.schema_name):
        member = User.objects.create_user(email, None, role="admin", last_login=timezone.now())
        ExternalIdentity.objects.create(issuer=issuer, subject=f"sub-{email}", user=member, email=email)
        return member


def _issued_after(tenant, stale: User) -> str | None:
    """The request authenticated before the change (its `request.user` is `stale`) issues a token
    now: the plaintext if one was issued, None if refused."""
    with schema_context(tenant.schema_name):
        try:
            return token_issue(actor=stale, name="late", role="admin", scopes=["read", "admin"]).plaintext
        except PermissionDenied:
            assert not ApiToken.objects.filter(name="late", revoked_at__isnull=True).exists()
            return None


def test_a_member_whose_domain_was_shut_out_meanwhile_issues_no_working_token(acme, idp):  # noqa: F811
    configure(acme, idp)
    stale = _sso_only_admin(acme, idp.issuer, "contractor@partner.test")

    configure(acme, idp, allowed_domains=["acme.test"])  # committed while the member's request ran
    with schema_context(acme.schema_name):
        assert TenantOIDCBackend().get_user(stale.pk) is None  # no way in is left for them

    plaintext = _issued_after(acme, stale)
    if plaintext is not None:
        status = api(acme, plaintext).get("/api/v1/members").status_code
        assert status == 401, "a member shut out by the SSO settings holds a fresh, working admin token"


def test_an_sso_only_member_issues_no_working_token_once_sso_was_disabled_meanwhile(acme, idp):  # noqa: F811
    configure(acme, idp)
    stale = _sso_only_admin(acme, idp.issuer, "ssoonly@acme.test")

    with schema_context(acme.schema_name):
        sso_disable(actor=tenant_user(acme, "owner@acme.test"))
        assert TenantOIDCBackend().get_user(stale.pk) is None

    plaintext = _issued_after(acme, stale)
    if plaintext is not None:
        status = api(acme, plaintext).get("/api/v1/members").status_code
        assert status == 401, "a member shut out by disabling SSO holds a fresh, working admin token"
