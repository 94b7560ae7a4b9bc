"""Edges of a workspace's identity provider's answers (docs/sso.md): claims holding a lone surrogate
(JSON "\\ud800", which neither PostgreSQL nor Redis takes) are coded refusals, not 500s; a sign-in
over another member's session keeps what sign-out needs; a roles claim userinfo cannot vouch for
refuses the sign-in; an ID token without `kid` verifies against a provider's only key."""

from urllib.parse import urlencode

import jwt
import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from tests.conftest import PASSWORD
from tests.identity.scripted_idp import KEY, begin, scripted_sso
from tests.identity.test_login import ACCOUNTS, client_config, finish, sso, start

CLIENT_ID = "foundry-acme"


@pytest.fixture
def provider(oidc_provider_factory, acme, loopback_allowed):
    return oidc_provider_factory(clients=[client_config(acme)], accounts=ACCOUNTS)


def _claims(scripted, nonce: str, **extra) -> dict:
    return scripted.claims(CLIENT_ID, nonce, **extra)


def _roles_from_userinfo(acme, scripted) -> None:
    """SSO whose roles claim (`groups`) the ID token lacks: it is to come from userinfo."""
    scripted_sso(
        acme,
        scripted,
        client_id=CLIENT_ID,
        client_secret="s" * 20,
        scopes="openid email profile groups",
        roles_claim="groups",
        role_map={"foundry-admins": "admin"},
    )


def _callback_with(client, state, scripted, id_token: str):
    scripted.token_response = {"id_token": id_token, "access_token": "at-1", "token_type": "Bearer"}
    return client.get("/sso/callback/?" + urlencode({"code": "c1", "state": state}))


def test_an_id_token_nonce_with_a_lone_surrogate_is_a_coded_refusal_not_a_500(acme, scripted):
    """The nonce claim of a signed ID token holding a lone surrogate (JSON `"\\ud800"`) must be
    refused as `token_nonce_invalid` (a 403 with a code, docs/sso.md "A refused sign-in is a 403
    page with a stable code"; PRODUCT.md: bad input gets a clear error). verify.py encodes it to
    UTF-8 for compare_digest and raises UnicodeEncodeError: a 500."""
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, _nonce = begin(acme)
    response = _callback_with(client, state, scripted, scripted.sign(_claims(scripted, "\ud800")))
    assert response.status_code == 403, (response.status_code, response.content[-300:])


def test_an_idp_email_with_a_lone_surrogate_is_a_coded_refusal_not_a_500(acme, scripted):
    """An ID token `email` with a lone surrogate is refused by email_clean (`email_invalid`), but
    recording that refusal (oidc.py _refused -> accounts login_target) queries the users table with
    the raw address, which the database driver cannot encode: a 500 instead of the 403
    `email_invalid` docs/sso.md promises."""
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, nonce = begin(acme)
    token = scripted.sign(_claims(scripted, nonce, email="a\ud800@acme.test"))
    response = _callback_with(client, state, scripted, token)
    assert response.status_code == 403, (response.status_code, response.content[-300:])
    assert b"email_invalid" in response.content


def test_sso_sign_in_over_another_members_session_still_signs_out_at_the_provider(acme, provider):
    """docs/sso.md: "Sign-out ends the session and, when the provider has an end-session endpoint,
    sends the browser there (id_token_hint, back to /login/)". A browser where someone else is
    signed in (here the owner, with a password) that signs in through SSO as ada loses the ID token:
    the library stores it in the session, then auth.login flushes that session for the new user.
    Ada's sign-out then never reaches the provider, whose session stays open on that browser."""
    sso(acme, provider)
    client = Client(HTTP_HOST="acme.localhost")
    assert client.post("/login/", {"username": "owner@acme.test", "password": PASSWORD}).status_code == 302
    _client, authorize = start(acme, client)
    assert finish(client, provider.follow_login(authorize, "ada")).status_code == 302
    assert client.session["_auth_user_id"] == str(_pk(acme, "ada@acme.test"))
    response = client.post("/logout/")
    assert response["Location"].startswith(provider.metadata["end_session_endpoint"]), response["Location"]


def _pk(tenant, email: str) -> int:
    with schema_context(tenant.schema_name):
        return User.objects.get(email=email).pk


def test_userinfo_answering_for_another_subject_does_not_demote_the_member(acme, scripted):
    """The roles claim is to come from userinfo (the ID token lacks it). Userinfo answers for
    another `sub`, so its answer is discarded (OIDC Core 5.3.2) — the roles claim could not be read,
    as when userinfo does not answer. docs/sso.md: such a sign-in is refused "rather than signing the
    member in as a viewer". Instead the admin signs in, is demoted to viewer and loses the API tokens
    that outrank it."""
    _roles_from_userinfo(acme, scripted)
    client, _authorize, state, nonce = begin(acme)
    scripted.userinfo = {"sub": "someone-else", "groups": ["foundry-admins"]}
    response = _callback_with(client, state, scripted, scripted.sign(_claims(scripted, nonce, email="admin@acme.test")))
    with schema_context(acme.schema_name):
        role = User.objects.get(email="admin@acme.test").role
    assert role == "admin", (response.status_code, role)
    assert response.status_code == 403 and b"idp_refused" in response.content


def test_an_id_token_without_kid_verifies_against_a_single_key_set(acme, scripted):
    """OIDC Core 10.1: a `kid` in the JOSE header is required only when the JWK Set holds several
    keys. The scripted provider publishes one RS256 key; its ID token without `kid` should verify
    (docs/sso.md: "the key from the provider's JWKS with a type that fits the algorithm"), but
    jwks_key looks up kid "" and refuses it as `token_key_unknown`."""
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, nonce = begin(acme)
    token = jwt.encode(_claims(scripted, nonce), KEY, algorithm="RS256")
    assert "kid" not in jwt.get_unverified_header(token)
    response = _callback_with(client, state, scripted, token)
    assert response.status_code == 302, (response.status_code, response.content[-300:])


def test_a_roles_claim_userinfo_cannot_be_asked_for_refuses_the_sign_in(acme, scripted):
    """The token response has no access token, so userinfo, which holds the roles claim, cannot be
    asked: refused (`idp_refused`) like a userinfo outage, the admin left an admin."""
    _roles_from_userinfo(acme, scripted)
    client, _authorize, state, nonce = begin(acme)
    scripted.token_response = {
        "id_token": scripted.sign(_claims(scripted, nonce, email="admin@acme.test")),
        "token_type": "Bearer",
    }
    response = client.get("/sso/callback/?" + urlencode({"code": "c1", "state": state}))
    assert response.status_code == 403 and b"idp_refused" in response.content
    with schema_context(acme.schema_name):
        assert User.objects.get(email="admin@acme.test").role == "admin"
