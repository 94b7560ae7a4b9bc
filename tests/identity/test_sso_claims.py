"""What an identity provider's claims may change of a member at sign-in (apps/identity/login.py,
oidc.py): a name as readable as one typed in the console, an address only as verified as the
provider said it is, and a role not taken away by an outage."""

import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.identity import oidc
from apps.identity.login import SsoLoginFailed, sso_login_resolve
from apps.identity.models import ExternalIdentity, SsoConfiguration
from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue
from tests.identity.conftest import configure

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def test_a_name_from_the_provider_may_not_carry_text_direction_characters(acme, idp):
    """A member's name holds no text-direction character (docs/roles.md), from the console or from
    the provider: one the provider sends with an RLO (U+202E) is not taken."""
    configure(acme, idp)
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
        claims = {
            "sub": "sub-rlo",
            "email": "rlo@acme.test",
            "email_verified": True,
            "name": "Mallory \u202enimda\u202c",
        }
        user = sso_login_resolve(config, claims)
        user.refresh_from_db()
        assert "\u202e" not in user.full_name


@pytest.mark.parametrize("name", ["\u200b", "\u2060 \ufeff", "\u3164"])
def test_a_name_from_the_provider_that_shows_nothing_is_not_taken(acme, idp, name):
    """A name of zero-width or blank-drawn characters alone would show the member with no name at
    all, where the console and the trail show the address instead: it is not taken."""
    configure(acme, idp)
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
        claims = {"sub": "sub-blank", "email": "blank@acme.test", "email_verified": True, "name": name}
        user = sso_login_resolve(config, claims)
        user.refresh_from_db()
        assert user.full_name == ""
        assert user.display_name == "blank@acme.test"


def test_a_provider_name_is_judged_as_it_would_be_stored(acme, idp):
    """Cut to its first 200 characters first: 200 zero-width spaces and a name after them would
    otherwise pass and be stored as the zero-width spaces alone."""
    configure(acme, idp)
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
        claims = {"sub": "sub-padded", "email": "padded@acme.test", "email_verified": True}
        user = sso_login_resolve(config, {**claims, "name": "\u200b" * 200 + "Mallory"})
        user.refresh_from_db()
        assert user.full_name == ""


def test_userinfo_vouching_for_another_address_does_not_verify_the_id_tokens_address(acme, idp, monkeypatch):
    """Userinfo completes the ID token's claims, but its `email_verified` vouches for the address
    it names: for the ID token's other address (an Entra `email` optional claim a user may edit,
    say) it counts for nothing, and no member is linked by that address (here the owner's)."""
    configure(acme, idp, allowed_domains=[])

    def userinfo(method, url, **kwargs):
        return {"sub": "mallory-1", "email": "mallory@mallory.test", "email_verified": True}

    monkeypatch.setattr(oidc, "_idp_call", userinfo)
    with schema_context(acme.schema_name):
        backend = oidc.TenantOIDCBackend()
        backend.config = SsoConfiguration.objects.get(pk=1)
        id_token = {"sub": "mallory-1", "email": "owner@acme.test", "iss": idp.issuer, "aud": "foundry-acme"}
        claims = backend.get_userinfo("access-token", "id-token", id_token)
        assert "email_verified" not in claims
        with pytest.raises(SsoLoginFailed):
            sso_login_resolve(backend.config, claims)
        assert not ExternalIdentity.objects.filter(subject="mallory-1").exists()


def test_a_userinfo_outage_refuses_the_sign_in_rather_than_demoting_the_member(acme, idp, monkeypatch):
    """The roles claim may come from userinfo only: when userinfo does not answer, the sign-in is
    refused (`idp_unreachable`), rather than the member signed in as a viewer (an absent claim maps
    no role) and their tokens revoked as by a demotion, for good."""
    configure(acme, idp, allowed_domains=[], roles_claim="groups", role_map={"foundry-admins": "admin"})

    def down(method, url, **kwargs):
        raise SsoLoginFailed("idp_unreachable", "timed out")

    monkeypatch.setattr(oidc, "_idp_call", down)
    with schema_context(acme.schema_name):
        admin = User.objects.get(email="admin@acme.test")
        ExternalIdentity.objects.create(issuer=idp.issuer, subject="sub-admin", user=admin, email=admin.email)
        token_issue(actor=admin, name="ci", role="admin", scopes=["read", "write", "admin"])
        backend = oidc.TenantOIDCBackend()
        backend.config = SsoConfiguration.objects.get(pk=1)
        id_token = {"sub": "sub-admin", "email": "admin@acme.test", "email_verified": True, "iss": idp.issuer}
        with pytest.raises(SsoLoginFailed) as refused:
            backend.get_userinfo("access-token", "id-token", id_token)
        assert refused.value.code == "idp_unreachable"
        admin.refresh_from_db()
        assert admin.role == "admin"
        assert ApiToken.objects.filter(issued_by=admin, revoked_at__isnull=True).exists()
