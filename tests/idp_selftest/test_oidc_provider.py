"""The test OpenID provider (tests/oidc_provider.py) is the real oidc-provider: these tests pin down
what the SSO and bearer-token tests rely on."""

import httpx
import jwt
import pytest

from tests.oidc_provider import (
    OidcFlowError,
    OidcProvider,
    generate_key,
    pkce_pair,
    public_jwk,
)

CALLBACK = "http://testserver/sso/callback/"
HOME = "http://testserver/"
AUDIENCE = "api://foundry"
FOUNDRY = {
    "client_id": "foundry",
    "client_secret": "s3cret-foundry",
    "redirect_uris": [CALLBACK],
    "post_logout_redirect_uris": [HOME],
    "audience": AUDIENCE,
}
ADA = {
    "sub": "ada-1",
    "email": "ada@acme.test",
    "email_verified": True,
    "name": "Ada Lovelace",
    "groups": ["engineers", "admins"],
}
BOB = {"sub": "bob-2", "email": "bob@acme.test", "email_verified": False, "name": "Bob", "groups": []}


@pytest.fixture
def idp(oidc_provider_factory) -> OidcProvider:
    return oidc_provider_factory(clients=[FOUNDRY], accounts={"ada": ADA, "bob": BOB})


def verified(idp: OidcProvider, token: str, *, audience: str) -> dict:
    """The claims of `token`, checked against the keys the IdP publishes now."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(idp.jwks())[kid]
    return jwt.decode(token, key, algorithms=["RS256", "ES256"], audience=audience, issuer=idp.issuer)


def code_flow(idp: OidcProvider, login: str, **authorize) -> tuple[httpx.URL, dict]:
    verifier, challenge = pkce_pair()
    callback = idp.authorize(
        client_id="foundry",
        redirect_uri=CALLBACK,
        login=login,
        state="state-1",
        nonce="nonce-1",
        code_challenge=challenge,
        **authorize,
    )
    tokens = idp.token(client_id="foundry", code=callback.params["code"], redirect_uri=CALLBACK, code_verifier=verifier)
    return callback, tokens


def test_it_runs_the_code_flow_with_pkce(idp):
    callback, tokens = code_flow(idp, "ada")

    assert str(callback.copy_with(query=None)) == CALLBACK
    assert callback.params["state"] == "state-1"
    assert callback.params["iss"] == idp.issuer  # RFC 9207
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 600
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == idp.keys[0]["kid"]
    claims = verified(idp, tokens["id_token"], audience="foundry")
    assert {k: claims[k] for k in ("sub", "email", "email_verified", "name", "groups", "nonce")} == {
        **ADA,
        "nonce": "nonce-1",
    }


def test_it_issues_jwt_access_tokens_for_the_client_audience(idp):
    token = idp.access_token("foundry", "ada")

    header = jwt.get_unverified_header(token)
    assert (header["typ"], header["alg"], header["kid"]) == ("at+jwt", "RS256", idp.keys[0]["kid"])
    claims = verified(idp, token, audience=AUDIENCE)
    assert claims["sub"] == "ada-1"
    assert claims["client_id"] == "foundry"
    assert claims["email"] == "ada@acme.test"
    assert claims["groups"] == ["engineers", "admins"]
    assert claims["scope"] == "openid email profile groups"
    assert claims["exp"] - claims["iat"] == 600


def test_its_access_tokens_are_refused_at_userinfo(idp):
    """Resource-bound (JWT) access tokens are for the API, not for the userinfo endpoint: the ID
    token carries every claim instead."""
    token = idp.access_token("foundry", "ada")

    response = httpx.get(idp.metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_requires_pkce(idp):
    url = httpx.URL(
        idp.metadata["authorization_endpoint"],
        params={"response_type": "code", "client_id": "foundry", "redirect_uri": CALLBACK, "scope": "openid"},
    )

    callback = httpx.URL(idp.follow_login(str(url), "ada"))

    assert callback.params["error"] == "invalid_request"
    assert "PKCE" in callback.params["error_description"]


def test_it_refuses_a_wrong_code_verifier(idp):
    _, challenge = pkce_pair()
    callback = idp.authorize(
        client_id="foundry", redirect_uri=CALLBACK, login="ada", state="s", nonce="n", code_challenge=challenge
    )

    with pytest.raises(OidcFlowError, match="invalid_grant"):
        idp.token(client_id="foundry", code=callback.params["code"], redirect_uri=CALLBACK, code_verifier="x" * 43)


def test_it_refuses_a_wrong_client_secret(idp):
    verifier, challenge = pkce_pair()
    callback = idp.authorize(
        client_id="foundry", redirect_uri=CALLBACK, login="ada", state="s", nonce="n", code_challenge=challenge
    )

    response = httpx.post(
        idp.metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": callback.params["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            "client_id": "foundry",
            "client_secret": "wrong",
        },
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_it_refuses_an_unknown_login(idp):
    _, challenge = pkce_pair()

    with pytest.raises(OidcFlowError, match="Unknown user"):
        idp.authorize(
            client_id="foundry", redirect_uri=CALLBACK, login="mallory", state="s", nonce="n", code_challenge=challenge
        )


def test_it_keeps_the_session_and_switches_account_on_prompt_login(idp):
    cookies = httpx.Cookies()
    code_flow(idp, "ada", cookies=cookies, scope="openid email")

    # Signed in already: more scopes are granted without any page.
    _, again = code_flow(idp, None, cookies=cookies)
    _, bob = code_flow(idp, "bob", cookies=cookies, extra={"prompt": "login"})

    assert verified(idp, again["id_token"], audience="foundry")["groups"] == ["engineers", "admins"]
    assert verified(idp, bob["access_token"], audience=AUDIENCE)["sub"] == "bob-2"


def test_it_logs_out_to_the_post_logout_redirect_uri(idp):
    cookies = httpx.Cookies()
    _, tokens = code_flow(idp, "ada", cookies=cookies)
    url = httpx.URL(
        idp.metadata["end_session_endpoint"],
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": HOME, "state": "bye"},
    )

    assert idp.follow_logout(str(url), cookies=cookies) == f"{HOME}?state=bye"
    with pytest.raises(OidcFlowError, match="no login was given"):
        code_flow(idp, None, cookies=cookies)


def test_it_serves_the_public_keys_only(oidc_provider_factory):
    keys = [generate_key("RS256", "rsa-1"), generate_key("ES256", "ec-1")]
    idp = oidc_provider_factory(clients=[FOUNDRY], accounts={"ada": ADA}, keys=keys)

    assert idp.jwks() == {"keys": [public_jwk(k) for k in keys]}


def test_it_signs_with_es256(oidc_provider_factory):
    idp = oidc_provider_factory(clients=[FOUNDRY], accounts={"ada": ADA}, keys=[generate_key("ES256", "ec-1")])

    _, tokens = code_flow(idp, "ada")

    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "ES256"
    assert jwt.get_unverified_header(tokens["access_token"])["kid"] == "ec-1"
    assert verified(idp, tokens["access_token"], audience=AUDIENCE)["sub"] == "ada-1"


def test_it_rotates_keys_on_restart(idp):
    old_key, issuer = idp.keys[0], idp.issuer
    old_token = idp.access_token("foundry", "ada")
    new_key = generate_key(kid="rotated")

    idp.restart(keys=[new_key, old_key])

    assert idp.issuer == issuer
    new_token = idp.access_token("foundry", "ada")
    assert jwt.get_unverified_header(new_token)["kid"] == "rotated"
    assert verified(idp, old_token, audience=AUDIENCE)["sub"] == "ada-1"

    idp.restart(keys=[new_key])

    assert [k["kid"] for k in idp.jwks()["keys"]] == ["rotated"]
    with pytest.raises(KeyError):
        verified(idp, old_token, audience=AUDIENCE)


def test_it_serves_changed_accounts(idp):
    idp.set_accounts({"ada": {**ADA, "groups": ["viewers"], "email": "ada@new.test"}})

    _, tokens = code_flow(idp, "ada")

    assert verified(idp, tokens["access_token"], audience=AUDIENCE)["groups"] == ["viewers"]
    assert verified(idp, tokens["id_token"], audience="foundry")["email"] == "ada@new.test"
    with pytest.raises(OidcFlowError, match="Unknown user"):
        code_flow(idp, "bob")

    idp.restart(accounts={"bob": BOB})

    assert verified(idp, idp.access_token("foundry", "bob"), audience=AUDIENCE)["sub"] == "bob-2"


def test_it_fails_loudly_on_a_bad_config():
    with pytest.raises(RuntimeError, match=r'needs kid, alg \(RS256 or ES256\), use "sig"'):
        OidcProvider([FOUNDRY], {"ada": ADA}, keys=[{"kid": "broken", "alg": "HS256"}])
