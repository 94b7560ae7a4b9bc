"""What a failed call to a workspace's identity provider tells the caller who caused it: anyone can
(a bearer JWT naming a key id the cached set lacks makes the platform fetch the key set, no
signature needed; anyone can start a sign-in and answer its callback with any code). They get the
stable code and a fixed message; the fetch's own words — the URL, the address the provider's name
resolved to and its class, the OS error: the platform's view of its network, perhaps an internal
one an operator allowed — go to the log."""

import ipaddress

import pytest
from django.test import Client

from tests.identity.conftest import SECRET, bearer_client, configure, unsigned_jwt


@pytest.mark.parametrize("failure", ["refused_by_policy", "idp_down"])
def test_an_unauthenticated_bearer_gets_no_network_details_of_a_failed_key_fetch(acme, idp, settings, failure):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    configure(acme, idp, client_secret=SECRET)
    if failure == "refused_by_policy":
        settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []  # the operator withdrew the allowance
    else:
        idp.close()  # the IdP is down
    response = bearer_client(acme, unsigned_jwt("k1")).get("/api/v1/members")
    assert response.status_code == 401, response.content[:300]
    text = response.content.decode()
    assert response.json()["error"]["code"] == "idp_keys_unavailable", text
    for leaked in ("/jwks", "resolves to", "loopback", "Errno", "Connection refused"):
        assert leaked not in text, f"{leaked!r} reaches an unauthenticated caller: {text}"


def test_the_sign_in_page_gives_no_network_details_of_a_failed_token_call(acme, idp, settings):
    """The same through /sso/callback/: anyone can start a sign-in (/sso/login/) and answer it
    with any code; when the token endpoint cannot be reached, the 403 page quotes the fetch's error
    (apps/identity/oidc.py:140: "The identity provider did not answer: {exc.message}")."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    configure(acme, idp, client_secret=SECRET)
    client = Client(raise_request_exception=False, HTTP_HOST=f"{acme.slug}.localhost")
    started = client.get("/sso/login/")
    assert started.status_code == 302, started.content[:300]
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]
    idp.close()  # the IdP's token endpoint is down
    response = client.get(f"/sso/callback/?{urlencode({'state': state, 'code': 'made-up'})}")
    assert response.status_code == 403, response.content[:300]
    text = response.content.decode()
    assert "idp_unreachable" in text, text[:2000]
    for leaked in ("/token", "Errno", "Connection refused"):
        assert leaked not in text, f"{leaked!r} reaches an unauthenticated caller: {text[:2000]}"
