"""An API token does not keep the standing its member lost when single sign-on stops admitting
them: settings that leave a member no way to sign in end their sessions (oidc.py get_user) and
revoke the tokens they issued (identity/services.py `_shut_out_tokens_revoke`), as removing the
member does; a member who can still sign in another way keeps theirs."""

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.identity.models import ExternalIdentity
from apps.identity.oidc import TenantOIDCBackend
from apps.identity.services import sso_disable
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import tenant_user
from tests.identity.conftest import configure, idp, loopback_allowed  # noqa: F401 - fixtures
from tests.providers.conftest import encryption_key  # noqa: F401 - autouse

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def _sso_member_with_token(tenant, issuer: str, email: str) -> tuple[User, str]:
    """A member who joined through SSO (no password), an admin, who issued a read token."""
    with schema_context(tenant.schema_name):
        member = User.objects.create_user(email, None, role="admin", last_login=timezone.now())  # signed in once
        ExternalIdentity.objects.create(issuer=issuer, subject=f"sub-{email}", user=member, email=email)
        token = token_issue(actor=member, name="ci", role="admin", scopes=["read", "admin"]).plaintext
    return member, token


def test_an_api_token_of_a_member_whose_domain_is_no_longer_allowed_is_refused(acme, idp):  # noqa: F811
    configure(acme, idp)  # any domain
    member, token = _sso_member_with_token(acme, idp.issuer, "contractor@partner.test")
    assert api(acme, token).get("/api/v1/members").status_code == 200

    configure(acme, idp, allowed_domains=["acme.test"])  # the owner shuts partner.test out
    with schema_context(acme.schema_name):
        # The member's console session would be refused now (and was deleted)...
        assert TenantOIDCBackend().get_user(member.pk) is None
        # ... they are still listed, with their role (nothing revoked their standing).
        assert User.objects.filter(pk=member.pk).exists()
    response = api(acme, token).get("/api/v1/members")
    assert response.status_code == 401, (response.status_code, response.content[:300])


def test_an_api_token_of_an_sso_only_member_is_refused_once_sso_is_disabled(acme, idp):  # noqa: F811
    configure(acme, idp)
    member, token = _sso_member_with_token(acme, idp.issuer, "ssoonly@acme.test")
    assert api(acme, token).get("/api/v1/members").status_code == 200

    with schema_context(acme.schema_name):
        sso_disable(actor=tenant_user(acme, "owner@acme.test"))
        # No way in is left for this member: no password, no provider, no invitation link.
        assert TenantOIDCBackend().get_user(member.pk) is None
        left = User.objects.get(pk=member.pk)
        assert not left.has_usable_password() and left.has_joined  # so no invitation link either
    response = api(acme, token).get("/api/v1/members")
    assert response.status_code == 401, (response.status_code, response.content[:300])


def test_a_member_who_still_signs_in_with_a_password_keeps_their_token_when_the_domains_narrow(acme, idp):  # noqa: F811
    configure(acme, idp)
    with schema_context(acme.schema_name):
        member = User.objects.create_user("partner@partner.test", "a long passphrase 1", role="admin")
        token = token_issue(actor=member, name="ci", role="admin", scopes=["read", "admin"]).plaintext
    configure(acme, idp, allowed_domains=["acme.test"])
    assert api(acme, token).get("/api/v1/members").status_code == 200
