"""What the workspace's identity provider sends gets a clear, coded refusal, never a 500
(tests/identity/test_idp_odd_documents.py states the rule; PRODUCT.md: "Bad input gets a clear
error"). A scripted provider (scripted_idp.py) signs the tokens with a key it publishes, so only the
odd value differs from a good sign-in."""

import time
from urllib.parse import urlencode

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.accounts.models import User
from tests.identity.scripted_idp import begin, scripted_sso

CLIENT_ID = "foundry-acme"


def _callback(acme, scripted, access_token: str = "at-1", **id_claims):
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    client, _authorize, state, nonce = begin(acme)
    scripted.token_response = {
        "id_token": scripted.id_token(CLIENT_ID, nonce, **id_claims),
        "access_token": access_token,
        "token_type": "Bearer",
    }
    return client.get("/sso/callback/?" + urlencode({"code": "c1", "state": state}))


def test_a_non_ascii_access_token_used_at_userinfo_is_a_coded_refusal_not_a_500(acme, scripted):
    """The ID token lacks `email_verified`, so the callback asks the userinfo endpoint with the
    access token the provider sent: one no HTTP header can carry (non-ASCII) is a failed call."""
    scripted.userinfo = {"sub": "sub-1", "email_verified": True}
    response = _callback(acme, scripted, access_token="jeton-é", email_verified=None)
    # Either outcome is fine — signed in from the ID token alone, or refused with a code — not a 500.
    assert response.status_code in (302, 403), (response.status_code, response.content[-300:])


def test_a_nul_in_the_subject_is_a_coded_refusal_not_a_500(acme, scripted):
    """A `sub` with a NUL (no text column takes one) is refused as no subject an identifier has."""
    response = _callback(acme, scripted, sub="a\x00b")
    assert response.status_code == 403, (response.status_code, response.content[-300:])
    with schema_context(acme.schema_name):
        assert not User.objects.filter(email="newbie@acme.test").exists()


def test_a_nul_in_the_name_claim_does_not_500(acme, scripted):
    """A `name` with a NUL is not taken as the member's name; the sign-in goes on."""
    response = _callback(acme, scripted, name="Ada\x00Lovelace")
    assert response.status_code in (302, 403), (response.status_code, response.content[-300:])


@pytest.mark.parametrize("subject", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_a_provider_access_token_with_an_unstorable_subject_is_a_401_not_a_500(acme, scripted, subject):
    """On the API, such a subject is a coded 401 before any lookup; a lone surrogate's refusal was a
    500 (its once-a-minute audit guard built a Redis key from it, which could not be encoded)."""
    scripted_sso(acme, scripted, client_id=CLIENT_ID, client_secret="s" * 20)
    now = int(time.time())
    token = scripted.sign({"iss": scripted.issuer, "aud": CLIENT_ID, "sub": subject, "iat": now, "exp": now + 300})
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Bearer {token}", raise_request_exception=False)
    response = client.get("/api/v1/members")
    assert response.status_code == 401, (response.status_code, response.content[:300])
