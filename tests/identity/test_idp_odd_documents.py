"""What the identity provider (or whoever the owner points the configuration at) sends gets a
clear, coded refusal — never a 500 (PRODUCT.md: "Bad input gets a clear error and changes
nothing"): JSON nested past Python's parser, keys the JWT library cannot build."""

import json

import pytest
from django_tenants.utils import schema_context

from apps.identity.models import SsoConfiguration
from tests.api.conftest import issue
from tests.identity.conftest import SECRET, bearer_client, configure, unsigned_jwt

pytestmark = pytest.mark.usefixtures("loopback_allowed")

DEEP = b"[" * 100_000  # 100 kB: far below the 1 MiB bound, far past Python's recursion limit


def test_a_deeply_nested_discovery_document_is_a_coded_400_not_a_500(acme, idp):
    """A discovery document of nested arrays (100 kB, within DISCOVERY_MAX_BYTES): json raises
    RecursionError, which is `discovery_not_json` like any document that is not JSON."""
    idp.discovery_body = DEEP
    client = bearer_client(acme, issue(acme, role="owner"))
    body = {"issuer": idp.issuer, "client_id": "foundry", "client_secret": SECRET}
    response = client.put("/api/v1/sso", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert "discovery_not_json" in response.content.decode()
    with schema_context(acme.schema_name):
        assert not SsoConfiguration.objects.exists()


@pytest.mark.parametrize(
    "jwks_body",
    [
        # Keys of the right type for RS256 that PyJWT cannot build (jwt.InvalidKeyError).
        json.dumps({"keys": [{"kty": "RSA", "kid": "bad", "n": "AA", "e": "AQAB"}]}).encode(),
        json.dumps({"keys": [{"kty": "RSA", "kid": "bad"}]}).encode(),
        # A nested key set (RecursionError in the parser).
        DEEP,
    ],
    ids=["rsa_key_too_short", "rsa_key_without_n_e", "deeply_nested_jwks"],
)
def test_a_key_set_pyjwt_cannot_read_is_a_401_not_a_500(acme, idp, jwks_body):
    """A bearer JWT naming a key id the provider's key set holds, where that key (or the whole
    set) cannot be read: 401 `token_key_unknown` / `idp_keys_unavailable`. No signature is needed
    to reach this, so one odd key published by the IdP must not make such requests 500s."""
    idp.jwks_body = jwks_body
    configure(acme, idp, client_secret=SECRET)
    response = bearer_client(acme, unsigned_jwt("bad")).get("/api/v1/members")
    assert response.status_code == 401, (response.status_code, response.content[:300])
    assert response.json()["error"]["code"] in ("token_key_unknown", "idp_keys_unavailable")
