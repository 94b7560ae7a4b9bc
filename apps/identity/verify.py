"""JWT verification: ID tokens at sign-in, access tokens on the API and MCP, service tokens.

One function checks every token the platform accepts, so the rules cannot drift apart: a size
bound, an algorithm allowlist of asymmetric signatures only (never `none`, never an HMAC that
would treat a public key as a shared secret), a key the issuer published whose type fits the
algorithm, exact issuer and audience, required time claims with bounded clock skew, and the
`nonce` when one is expected.
"""

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable, Iterable

import jwt

from apps.identity.jwks import JwksUnavailable, jwks_key, public_key
from apps.identity.models import SsoConfiguration
from foundry.errors import CodedError

logger = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 16 * 1024
CLOCK_SKEW_SECONDS = 60
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_REQUIRED = ("exp", "iat", "iss", "aud", "sub")


class TokenInvalid(CodedError):
    """A token refused; `code` is stable (token_expired, token_audience_invalid, …)."""


KeyLookup = Callable[[str], dict | list[dict] | None]  # kid → its key, or its keys of several types

_DECODE_ERRORS = (
    (jwt.ExpiredSignatureError, "token_expired", "The token has expired."),
    (jwt.ImmatureSignatureError, "token_not_yet_valid", "The token is not valid yet."),
    (jwt.InvalidIssuerError, "token_issuer_invalid", "The token was issued by another issuer."),
    (jwt.InvalidAudienceError, "token_audience_invalid", "The token was issued for another audience."),
    (jwt.MissingRequiredClaimError, "token_claims_missing", "The token lacks a required claim."),
    (jwt.InvalidSignatureError, "token_signature_invalid", "The token's signature does not verify."),
    (jwt.DecodeError, "token_malformed", "This is not a well-formed JWT."),
    (jwt.InvalidTokenError, "token_invalid", "The token is not valid."),
)


def _segment(text: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: JSON nested past Python's stack
        value = None
    if not isinstance(value, dict):
        raise TokenInvalid("token_malformed", "This is not a well-formed JWT.")
    return value


def token_parts(token: str) -> tuple[dict, dict]:
    """The header and claims of `token`, NOT verified: enough to pick the key and the checks
    (jwt.decode then parses it strictly and verifies everything)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenInvalid("token_too_large", f"A token is at most {MAX_TOKEN_BYTES} bytes.")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("token_malformed", "This is not a well-formed JWT.")
    header, claims = _segment(parts[0]), _segment(parts[1])
    if not isinstance(header.get("alg"), str) or not isinstance(header.get("kid", ""), str):
        raise TokenInvalid("token_malformed", "The token header is malformed.")
    return header, claims


def _fits(jwk: dict, alg: str) -> bool:
    if jwk.get("kty") != _KEY_TYPE.get(alg[:2]):
        return False
    if "alg" in jwk and jwk["alg"] != alg:
        return False
    return alg not in _CURVE or jwk.get("crv") == _CURVE[alg]


def claim_text_plain(text: str) -> bool:
    """Whether a claim's text holds no control character (a NUL: no text column takes one) and
    no lone surrogate (no UTF-8 encodes one): what an identifier or a person's name never holds."""
    return not any(ord(char) < 32 or ord(char) == 127 or 0xD800 <= ord(char) <= 0xDFFF for char in text)


def jwt_verify(
    token: str,
    *,
    key_for: KeyLookup,
    algorithms: Iterable[str],
    issuer: str,
    audience: str | list[str],
    nonce: str | None = None,
    header: dict | None = None,
    client_id: str | None = None,
) -> dict:
    """The verified claims of `token`, or TokenInvalid saying why not. `audience`: one, or any of
    several; `client_id`: for an ID token, the client it must have been issued to (OIDC Core
    3.1.3.7: `azp`, when present or when there are several audiences, must name it); `header`:
    the token's unverified header when the caller has already read it (token_parts)."""
    header = header if header is not None else token_parts(token)[0]
    alg = header["alg"]
    if alg not in ASYMMETRIC_ALGS or alg not in algorithms:
        raise TokenInvalid("token_alg_refused", f"Tokens signed with {alg[:20]!r} are not accepted.")
    try:
        jwk = key_for(header.get("kid", ""))
    except JwksUnavailable as exc:
        # Whoever sent the token — anyone, signature unchecked yet — learns that much; the fetch's
        # own words (the key set's address, what its name resolves to, the OS error) go to the log.
        logger.warning("identity provider's key set unavailable: %s", exc.message)
        raise TokenInvalid("idp_keys_unavailable", "The identity provider's keys cannot be fetched now.") from None
    candidates = jwk if isinstance(jwk, list) else [jwk] if jwk is not None else []
    if not candidates:
        raise TokenInvalid("token_key_unknown", "The token was signed with a key the issuer does not publish.")
    jwk = next((key for key in candidates if _fits(key, alg)), None)
    if jwk is None:
        raise TokenInvalid("token_alg_refused", f"The signing key does not fit the algorithm {alg!r}.")
    try:
        claims = jwt.decode(
            token,
            key=public_key(jwk, alg),
            algorithms=[alg],
            issuer=issuer,
            audience=audience,
            leeway=CLOCK_SKEW_SECONDS,
            # RSA keys under 2048 bits are refused (RFC 7518 3.3: they MUST be at least that long).
            options={"require": list(_REQUIRED), "strict_aud": False, "enforce_minimum_key_length": True},
        )
    except (jwt.PyJWKError, jwt.InvalidKeyError):  # a published key the library cannot build
        raise TokenInvalid("token_key_unknown", "The issuer's key could not be read.") from None
    except jwt.InvalidTokenError as exc:
        for kind, code, message in _DECODE_ERRORS:
            if isinstance(exc, kind):
                raise TokenInvalid(code, message) from None
        raise
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise TokenInvalid("token_claims_missing", "The token's subject is missing or too long.")
    if not claim_text_plain(subject):
        raise TokenInvalid("token_claims_missing", "The token's subject holds characters no identifier has.")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if client_id is not None and (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise TokenInvalid("token_audience_invalid", "The ID token was issued to another party (azp).")
    if nonce is not None:
        got = claims.get("nonce")
        # A lone surrogate (JSON "\ud800") has no UTF-8: such a nonce is no nonce this sign-in sent.
        if (
            not isinstance(got, str)
            or not claim_text_plain(got)
            or not hmac.compare_digest(got.encode(), nonce.encode())
        ):
            raise TokenInvalid("token_nonce_invalid", "The token's nonce is not the one this sign-in sent.")
    return claims


def idp_token_verify(
    config: SsoConfiguration,
    token: str,
    *,
    audience: str | list[str],
    nonce: str | None = None,
    header: dict | None = None,
    client_id: str | None = None,
) -> dict:
    """Claims of a token the workspace's identity provider signed for `audience` (an ID token:
    also `client_id`, the workspace's client)."""
    from apps.identity.services import sso_network_policy

    return jwt_verify(
        token,
        key_for=lambda kid: jwks_key(config.jwks_uri, kid, sso_network_policy, configured=config.updated_at),
        algorithms=config.signing_algs,
        issuer=config.issuer,
        audience=audience,
        nonce=nonce,
        header=header,
        client_id=client_id,
    )
