"""Platform service tokens: issued for one tenant, audience and role; verified like any bearer
token; published keys; refused on another tenant's host, after expiry, or forged."""

import io
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.identity.service_tokens import platform_jwks, service_issuer, service_token_issue
from tests.api.conftest import api
from tests.conftest import audit_events


def token_for(tenant, **kwargs) -> str:
    kwargs.setdefault("service", "worker")
    return service_token_issue(tenant_schema=tenant.schema_name, **kwargs)


def test_a_service_token_reads_its_tenant_with_its_role_and_scopes(acme):
    client = api(acme, token_for(acme, role="developer", scopes=("read",)))
    assert client.get("/api/v1/members").status_code == 200
    # Scope narrows the role: a developer could write, this token cannot.
    response = client.post("/api/v1/domains", {}, content_type="application/json")
    assert response.status_code == 403
    denied = audit_events("acme", action="access.denied")
    assert denied and denied[-1].actor_id == "service:worker"


def test_a_service_token_is_refused_on_another_tenants_host(acme, globex):
    response = api(globex, token_for(acme, role="admin", scopes=("read", "write"))).get("/api/v1/members")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_tenant_invalid")
    assert audit_events("globex", action="auth.token.rejected", data={"reason": "token_tenant_invalid"})


def test_audience_expiry_and_forgery_are_refused(acme):
    mcp_only = token_for(acme, audience="foundry-mcp")
    assert api(acme, mcp_only).get("/api/v1/members").json()["error"]["code"] == "token_audience_invalid"
    now = int(time.time())
    keys = platform_jwks()["keys"]
    claims = {"iss": service_issuer(), "sub": "service:x", "aud": "foundry-api", "tenant": acme.schema_name}
    claims |= {"tenant_id": acme.pk}
    claims |= {"role": "admin", "scope": "read", "iat": now - 900, "exp": now - 300}
    from apps.identity.service_tokens import platform_keys

    expired = jwt.encode(claims, platform_keys()[0].private, algorithm="EdDSA", headers={"kid": keys[0]["kid"]})
    assert api(acme, expired).get("/api/v1/members").json()["error"]["code"] == "token_expired"
    forged = jwt.encode(
        {**claims, "iat": now, "exp": now + 60}, Ed25519PrivateKey.generate(), "EdDSA", {"kid": keys[0]["kid"]}
    )
    assert api(acme, forged).get("/api/v1/members").json()["error"]["code"] == "token_signature_invalid"
    long_lived = jwt.encode(
        {**claims, "iat": now, "exp": now + 3600}, platform_keys()[0].private, "EdDSA", {"kid": keys[0]["kid"]}
    )
    assert api(acme, long_lived).get("/api/v1/members").json()["error"]["code"] == "token_lifetime_invalid"


def test_the_platform_publishes_its_verification_keys(acme):
    for host in ("localhost", "acme.localhost"):
        from django.test import Client

        response = Client(HTTP_HOST=host).get("/.well-known/jwks.json")
        assert response.status_code == 200
        keys = response.json()["keys"]
        assert keys and all(k["kty"] == "OKP" and k["alg"] == "EdDSA" and "d" not in k for k in keys)


def test_the_command_prints_a_token_and_refuses_bad_input(acme):
    out = io.StringIO()
    call_command("service_token", "acme", "--service", "mcp-bridge", "--scope", "read", stdout=out)
    claims = jwt.decode(out.getvalue().strip(), options={"verify_signature": False})
    assert (claims["sub"], claims["tenant"], claims["aud"]) == ("service:mcp-bridge", "acme", "foundry-api")
    assert audit_events("acme", action="token.service_issued", target_id="mcp-bridge")
    for bad in (["nope", "--service", "x"], ["acme", "--service", "a b"], ["acme", "--service", "x", "--ttl", "9999"]):
        with pytest.raises(CommandError):
            call_command("service_token", *bad, stdout=io.StringIO())


def test_an_agents_http_tool_gets_a_read_only_token_for_its_own_workspace_only(acme, settings):
    from django_tenants.utils import schema_context

    from apps.identity.service_tokens import own_workspace_headers

    headers = own_workspace_headers(acme.schema_name, "agent-invoice-triage")
    with schema_context(acme.schema_name):
        own = headers("acme.localhost:8000")
        assert headers("acme.localhost")["Authorization"].startswith("Bearer ")
        for elsewhere in ("globex.localhost", "nope.localhost", "localhost", "example.com", ""):
            assert headers(elsewhere) == {}, elsewhere
    with schema_context(acme.schema_name):
        assert headers("acme.localhost", "http")["Authorization"].startswith("Bearer ")  # served over http
        settings.SECURE_SSL_REDIRECT = True  # served over TLS: never in the clear
        assert headers("acme.localhost", "http") == {}
        assert headers("acme.localhost", "https")["Authorization"].startswith("Bearer ")
        assert headers("acme.localhost:443", "https")["Authorization"].startswith("Bearer ")
        assert headers("acme.localhost:8443", "https") == {}  # another service of that host
        settings.SECURE_SSL_REDIRECT = False
    client = api(acme, own["Authorization"].removeprefix("Bearer "))
    assert client.get("/api/v1/members").status_code == 200
    assert client.post("/api/v1/domains", {}, content_type="application/json").status_code == 403
    denied = audit_events("acme", action="access.denied")
    assert denied[-1].actor_id == "service:agent-invoice-triage"
