"""Bearer JWTs from a workspace's identity provider on the API: explicit types, key strength and
keys that share a `kid` (RFC 8725, RFC 7517/7518, RFC 9068; docs/sso.md)."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.identity.models import ExternalIdentity
from tests.api.conftest import api
from tests.identity.conftest import configure
from tests.identity.scripted_idp import KEY, PUBLIC_JWK

pytestmark = pytest.mark.usefixtures("loopback_allowed")

AUDIENCE = "api://foundry-acme"
# A 512-bit RSA key (cryptography generates none under 1024 bits): `openssl genrsa 512`.
WEAK_RSA_PEM = """-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAnFmPcQqpwpZzV8h1
D0BzT5vWg3qKDLrHzOKdnhznSG1OYFfuo4buEXHq5PK4KVv48Xie+knmqO7zeZy2
wWwA3QIDAQABAkBepZTA8JyNkDgoxs+eOPzVD1iPZQnW5Ob4r6KMyaB05cxYg9s6
hsJDSGablE0KenTRfy/o6pb4sfWZcSwP6F9BAiEAyC+KaeVfKd4k4+/DEQvjDg3T
oQl5/TjlNBuTZvXQ4K0CIQDH8TC2PUf0P0/G2YyyjQLqBl3hSIi50IN7tSgMonQ2
8QIgJsu32m/+cmG/6oDD4CDanxWk5vesMZv+J4wUlAadtX0CIQCRbtjV1iFegibP
JzL2NSenflYPJil9rzPUaeLlvcz2oQIgPMIn+9/K/t6f0RZuVqBdy+ypjoMNMCSy
TR9kHMLcmMw=
-----END PRIVATE KEY-----
"""


def _sso(acme, provider) -> None:
    """SSO through `provider`, and developer@acme.test linked to its subject sub-dev (as a first
    sign-in would have done)."""
    configure(acme, provider, client_id="foundry-acme", client_secret="s" * 20, audience=AUDIENCE)
    with schema_context(acme.schema_name):
        user = User.objects.get(email="developer@acme.test")
        ExternalIdentity.objects.create(issuer=provider.issuer, subject="sub-dev", user=user, email=user.email)


def _claims(issuer: str) -> dict:
    now = int(time.time())
    return {"iss": issuer, "aud": AUDIENCE, "sub": "sub-dev", "iat": now, "exp": now + 300}


def _result(response) -> tuple[int, str]:
    body = response.json()
    return response.status_code, (body.get("error") or {}).get("code", "")


def test_a_jwt_the_provider_typed_as_a_logout_token_is_no_access_token(acme, scripted):
    """RFC 8725 §3.11 (explicit typing) and OIDC Back-Channel Logout 1.0 §2.4: a provider types
    its logout tokens `logout+jwt` precisely so that no recipient takes one for another kind of
    token. Such a token (aud: the client id's audience, iat/exp/sub, no nonce) is accepted on the
    API as the member's access token. docs/sso.md: only access tokens act on the API ("An ID token
    is no access token"); RFC 9068 §4 has resource servers refuse any `typ` but at+jwt: a JWT typed
    other than JWT or at+jwt is 401 token_not_access."""
    _sso(acme, scripted)
    plain = jwt.encode(_claims(scripted.issuer), KEY, algorithm="RS256", headers={"kid": "s1"})
    assert api(acme, plain).get("/api/v1/members").status_code == 200  # the setup works
    logout = jwt.encode(_claims(scripted.issuer), KEY, algorithm="RS256", headers={"kid": "s1", "typ": "logout+jwt"})
    assert _result(api(acme, logout).get("/api/v1/members")) == (401, "token_not_access")


def test_a_provider_rsa_key_under_2048_bits_verifies_no_token(acme, idp):
    """RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms"
    (RS*/PS*); RFC 8725 §3.5 asks for keys of sufficient strength. A 512-bit modulus is factored
    in hours on a laptop, after which anyone signs tokens as any member: a token signed with one
    the provider's key set publishes is refused (401 token_key_unknown)."""
    weak = serialization.load_pem_private_key(WEAK_RSA_PEM.encode(), None)  # 512 bits
    public = jwt.algorithms.RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True)
    idp.jwks_body = json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()
    _sso(acme, idp)
    token = jwt.encode(_claims(idp.issuer), weak, algorithm="RS256", headers={"kid": "k1"})
    response = api(acme, token).get("/api/v1/members")
    assert response.status_code == 401, response.content[:200]


def test_a_key_id_an_rsa_and_an_ec_key_share_verifies_the_rsa_keys_tokens(acme, idp):
    """RFC 7517 §4.5: keys of a set SHOULD have distinct `kid`s, "one example in which different
    keys might use the same kid value is if they have different kty values". docs/sso.md: the
    token is checked with "the key from the provider's JWKS with a type that fits the algorithm".
    The provider publishes an RSA and an EC key under kid s1: an RS256 token signed with the RSA
    one is accepted, checked with the key of that kid whose type fits the algorithm."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_public = jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    idp.jwks_body = json.dumps(
        {"keys": [PUBLIC_JWK, {**ec_public, "kid": "s1", "alg": "ES256", "use": "sig"}]}
    ).encode()
    _sso(acme, idp)
    es_token = jwt.encode(_claims(idp.issuer), ec_key, algorithm="ES256", headers={"kid": "s1"})
    assert api(acme, es_token).get("/api/v1/members").status_code == 200  # the EC key verifies
    rs_token = jwt.encode(_claims(idp.issuer), KEY, algorithm="RS256", headers={"kid": "s1"})
    response = api(acme, rs_token).get("/api/v1/members")
    assert response.status_code == 200, response.content[:200]
