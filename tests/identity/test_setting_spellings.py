"""Settings stored before addresses had one spelling are re-spelled with them (identity 0004):
the break-glass owner's address and the allowed domains, typed with an A-label domain
(`xn--bcher-kva.test`), were left as they were while accounts 0003 re-spelled members' addresses
with the U-label (`bücher.test`). Every comparison is exact, so the break-glass owner at such a
domain could no longer sign in with a password while SSO is required (the workspace's one way in
without its identity provider), and verified members of such an allowed domain were refused
`email_domain_refused` (found by the Unicode review). Also: userinfo vouching for the ID token's
address in another case counts."""

import importlib
from urllib.parse import urlencode

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.identity.login import claims_email
from apps.identity.models import ExternalIdentity, SsoConfiguration
from tests.conftest import PASSWORD
from tests.identity.conftest import configure, idp, loopback_allowed, scripted  # noqa: F401 - fixtures
from tests.identity.scripted_idp import begin, scripted_sso
from tests.providers.conftest import encryption_key  # noqa: F401 - autouse

pytestmark = pytest.mark.usefixtures("loopback_allowed")

A_LABEL = "xn--bcher-kva.test"  # bücher.test


def _stored_before_upgrade(tenant, **fields) -> None:
    """Settings as the code before them stored them: the A-label spelling, valid then."""
    with schema_context(tenant.schema_name):
        SsoConfiguration.objects.filter(pk=1).update(**fields)


def _upgraded(tenant) -> None:
    """accounts 0003 and identity 0004, forwards, in `tenant`'s schema."""
    with schema_context(tenant.schema_name):
        for name in (
            "apps.accounts.migrations.0003_email_domain_spelling",
            "apps.identity.migrations.0004_setting_spellings",
        ):
            importlib.import_module(name).forwards(django_apps, None)


def test_the_break_glass_owner_of_an_idn_domain_still_signs_in_after_the_upgrade(acme, globex, idp):  # noqa: F811
    configure(acme, idp, sso_required=True, break_glass_email="owner@acme.test")
    configure(globex, idp, sso_required=True, break_glass_email="owner@globex.test")
    with schema_context(acme.schema_name):
        glass = User.objects.create_user(f"glass@{A_LABEL}", PASSWORD, role=Role.OWNER)
    _stored_before_upgrade(acme, break_glass_email=f"glass@{A_LABEL}")
    _upgraded(acme)
    with schema_context(acme.schema_name):
        glass.refresh_from_db()
        assert glass.email == "glass@bücher.test"
        assert SsoConfiguration.objects.get(pk=1).break_glass_email == "glass@bücher.test"
    response = Client(HTTP_HOST="acme.localhost").post(
        "/login/", {"username": f"glass@{A_LABEL}", "password": PASSWORD}
    )
    assert response.status_code == 302, response.content[-300:]
    # Another workspace's settings are its own: neither re-spelled by acme's nor opened to acme's owner.
    with schema_context(globex.schema_name):
        assert SsoConfiguration.objects.get(pk=1).break_glass_email == "owner@globex.test"
    refused = Client(HTTP_HOST="globex.localhost").post(
        "/login/", {"username": f"glass@{A_LABEL}", "password": PASSWORD}
    )
    assert refused.status_code == 200


def test_an_idn_allowed_domain_still_admits_its_members_after_the_upgrade(acme, idp):  # noqa: F811
    configure(acme, idp)
    _stored_before_upgrade(acme, allowed_domains=[A_LABEL, "acme.test"])
    _upgraded(acme)
    with schema_context(acme.schema_name):
        config = SsoConfiguration.objects.get(pk=1)
    assert config.allowed_domains == ["acme.test", "bücher.test"]
    assert claims_email(config, {"email": f"ada@{A_LABEL}", "email_verified": True}) == "ada@bücher.test"


CLIENT_ID = "foundry-acme"


def test_userinfo_verifying_the_id_tokens_address_in_another_case_counts(acme, scripted):  # noqa: F811
    """get_userinfo kept userinfo's `email_verified` only when its `email` equalled the ID
    token's byte for byte: `Owner@Acme.test` and `owner@acme.test` are one address, yet the
    provider's word that it is verified was dropped and the owner not linked (`identity_conflict`)."""
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, nonce = begin(acme)
    id_token = scripted.id_token(CLIENT_ID, nonce, sub="owner-sub", email="Owner@Acme.test", email_verified=None)
    scripted.userinfo = {"sub": "owner-sub", "email": "owner@acme.test", "email_verified": True}
    scripted.token_response = {"id_token": id_token, "access_token": "at-1", "token_type": "Bearer"}
    response = client.get("/sso/callback/?" + urlencode({"code": "c1", "state": state}))
    assert response.status_code == 302, response.content[-300:]
    with schema_context(acme.schema_name):
        linked = list(ExternalIdentity.objects.filter(subject="owner-sub").values_list("user__email", flat=True))
    assert linked == ["owner@acme.test"]


def test_userinfo_verifying_another_address_still_does_not_count(acme, scripted):  # noqa: F811
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, nonce = begin(acme)
    id_token = scripted.id_token(CLIENT_ID, nonce, sub="owner-sub", email="owner@acme.test", email_verified=None)
    scripted.userinfo = {"sub": "owner-sub", "email": "other@acme.test", "email_verified": True}
    scripted.token_response = {"id_token": id_token, "access_token": "at-1", "token_type": "Bearer"}
    client.get("/sso/callback/?" + urlencode({"code": "c1", "state": state}))
    with schema_context(acme.schema_name):
        assert not ExternalIdentity.objects.filter(subject="owner-sub").exists()
