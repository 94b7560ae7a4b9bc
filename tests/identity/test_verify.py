"""The one JWT check every accepted token goes through (apps.identity.verify), attacked directly
with tokens signed by keys of the test's own."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from apps.identity.verify import CLOCK_SKEW_SECONDS, MAX_TOKEN_BYTES, TokenInvalid, jwt_verify

ISSUER = "https://idp.example.com"
AUDIENCE = "foundry-acme"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key, kid: str, alg: str) -> dict:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


KEYS = {"rsa1": _jwk(RSA_KEY, "rsa1", "RS256"), "ec1": _jwk(EC_KEY, "ec1", "ES256")}


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, "nonce": "n-1"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict, key=RSA_KEY, alg="RS256", kid="rsa1", headers=None) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


def verify(token: str, nonce: str | None = None, algorithms=("RS256", "ES256"), **kwargs) -> dict:
    kwargs.setdefault("audience", AUDIENCE)
    return jwt_verify(token, key_for=KEYS.get, algorithms=algorithms, issuer=ISSUER, nonce=nonce, **kwargs)


def refused(token: str, code: str, **kwargs) -> None:
    with pytest.raises(TokenInvalid) as caught:
        verify(token, **kwargs)
    assert caught.value.code == code, caught.value.message


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_good_rs256_and_es256_token_verify():
    assert verify(sign(claims()), nonce="n-1")["sub"] == "user-1"
    assert verify(sign(claims(), EC_KEY, "ES256", "ec1"), nonce="n-1")["sub"] == "user-1"


def test_alg_none_is_refused():
    token = f"{_b64({'alg': 'none', 'kid': 'rsa1'})}.{_b64(claims())}."
    refused(token, "token_alg_refused")


def test_hs256_signed_with_the_rsa_public_key_is_refused():
    # The classic confusion: the public key (which everyone has) used as an HMAC secret.
    public_pem = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = _b64({"alg": "HS256", "kid": "rsa1", "typ": "JWT"})
    body = _b64(claims())
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    refused(f"{header}.{body}.{_b64(signature)}", "token_alg_refused")
    refused(f"{header}.{body}.{_b64(signature)}", "token_alg_refused", algorithms=("HS256", "RS256"))


def test_an_algorithm_the_key_does_not_fit_is_refused():
    # RS256-signed but claiming the EC key, and ES256 claiming the RSA key.
    refused(sign(claims(), kid="ec1"), "token_alg_refused")
    refused(sign(claims(), EC_KEY, "ES256", "rsa1"), "token_alg_refused")


def test_a_bad_signature_is_refused():
    refused(sign(claims(), OTHER_RSA), "token_signature_invalid")
    good = sign(claims())
    header, _body, signature = good.split(".")
    tampered = _b64(claims(sub="admin"))
    refused(f"{header}.{tampered}.{signature}", "token_signature_invalid")


def test_wrong_issuer_and_audience_are_refused():
    refused(sign(claims(iss="https://evil.example.com")), "token_issuer_invalid")
    refused(sign(claims(iss=ISSUER + "/")), "token_issuer_invalid")
    refused(sign(claims(aud="foundry-other")), "token_audience_invalid")
    # An ID token (client_id given): azp, when present or with several audiences, must be us.
    refused(sign(claims(aud=[AUDIENCE, "other"], azp="other")), "token_audience_invalid", client_id=AUDIENCE)
    refused(sign(claims(aud=[AUDIENCE, "other"])), "token_audience_invalid", client_id=AUDIENCE)
    refused(sign(claims(azp="other")), "token_audience_invalid", client_id=AUDIENCE)
    assert verify(sign(claims(aud=[AUDIENCE, "other"], azp=AUDIENCE)), client_id=AUDIENCE)["sub"] == "user-1"
    # An access token for an API and the userinfo endpoint, issued to some client (Auth0's shape).
    assert verify(sign(claims(aud=[AUDIENCE, "https://idp/userinfo"], azp="a-client")))["sub"] == "user-1"
    # Any one of several accepted audiences.
    assert verify(sign(claims(aud="https://acme/mcp")), audience=[AUDIENCE, "https://acme/mcp"])
    refused(sign(claims(aud="https://acme/mcp")), "token_audience_invalid")


def test_expiry_and_clock_skew():
    now = int(time.time())
    refused(sign(claims(exp=now - CLOCK_SKEW_SECONDS - 5, iat=now - 600)), "token_expired")
    assert verify(sign(claims(exp=now - CLOCK_SKEW_SECONDS + 20)))  # within the skew
    refused(sign(claims(iat=now + CLOCK_SKEW_SECONDS + 30)), "token_not_yet_valid")
    refused(sign(claims(nbf=now + CLOCK_SKEW_SECONDS + 30)), "token_not_yet_valid")


def test_required_claims():
    for missing in ("exp", "iat", "sub", "aud", "iss"):
        with pytest.raises(TokenInvalid) as caught:
            verify(sign(claims(**{missing: None})))
        assert caught.value.code == "token_claims_missing", missing
    refused(sign(claims(sub="x" * 300)), "token_claims_missing")


def test_nonce_missing_or_different_is_refused():
    refused(sign(claims(nonce=None)), "token_nonce_invalid", nonce="n-1")
    refused(sign(claims(nonce="n-2")), "token_nonce_invalid", nonce="n-1")
    refused(sign(claims(nonce=5)), "token_nonce_invalid", nonce="n-1")


def test_unknown_key_malformed_and_oversized_tokens():
    refused(sign(claims(), kid="rotated-away"), "token_key_unknown")
    for junk in ("", "abc", "a.b.c", "eyJ.eyJ.x", "\x00.\x00.\x00", "é.é.é"):
        refused(junk, "token_malformed")
    refused(sign(claims(pad="x" * MAX_TOKEN_BYTES)), "token_too_large")
    _header, body, signature = sign(claims()).split(".")
    refused(f"{_b64({'alg': 'RS256', 'kid': 5})}.{body}.{signature}", "token_malformed")
