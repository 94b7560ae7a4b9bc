"""SSO fixtures: a real OIDC discovery server on loopback, an encryption key of the test's own."""

import base64
import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from apps.identity import services
from apps.identity.models import SsoConfiguration
from apps.identity.services import sso_configure
from tests.conftest import tenant_user
from tests.providers.conftest import encryption_key  # noqa: F401 — the same key of the test's own, autouse here too
from tests.stub_http import StubHTTPServer

SECRET = "oidc-client-secret-5f4e3d2c1b0a9f8e"
JWKS = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4s", "e": "AQAB"}]}


class OidcServer:
    """A threaded HTTP server on 127.0.0.1 serving a discovery document and a JWKS.

    `mode`: "ok", "slow" (answers only after `release` is set), "redirect", "html"; `document`
    overrides the discovery document, `discovery_body` and `jwks_body` the bytes served."""

    def __init__(self):
        server = self
        self.mode = "ok"
        self.document: dict | None = None
        self.discovery_body: bytes | None = None
        self.jwks_body: bytes | None = None
        self.release = threading.Event()
        self.requests: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if server.mode == "slow":
                    server.release.wait(10)
                if server.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"{server.issuer}/elsewhere")
                    self.end_headers()
                    return
                if self.path == "/.well-known/openid-configuration":
                    if server.mode == "html":
                        body, kind = b"<html>not here</html>", "text/html"
                    else:
                        body = server.discovery_body or json.dumps(server.document or server.discovery()).encode()
                        kind = "application/json"
                elif self.path == "/jwks":
                    body, kind = server.jwks_body or json.dumps(JWKS).encode(), "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = StubHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256", "RS256", "ES256"],
        }

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def idp():
    server = OidcServer()
    yield server
    server.close()


@pytest.fixture
def loopback_allowed(settings):
    """The operator lets every tenant reach loopback (where the test IdP listens)."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def scripted(loopback_allowed):
    """A provider whose token answers a test scripts (scripted_idp.py), signing with a key it publishes."""
    from tests.identity.scripted_idp import ScriptedIdp  # it builds on OidcServer, above

    server = ScriptedIdp()
    yield server
    server.close()


@pytest.fixture
def quick_timeout(monkeypatch):
    monkeypatch.setattr(services, "DISCOVERY_TIMEOUT_SECONDS", 0.5)


def configure(tenant, idp: OidcServer, *, email: str | None = None, **fields) -> SsoConfiguration:
    """Configure SSO in `tenant` as its owner (or `email`) against `idp`."""
    fields.setdefault("issuer", idp.issuer)
    fields.setdefault("client_id", f"foundry-{tenant.slug}")
    fields.setdefault("client_secret", SECRET)
    actor = tenant_user(tenant, email or f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        return sso_configure(actor=actor, **fields)


def stored(tenant) -> SsoConfiguration | None:
    with schema_context(tenant.schema_name):
        return SsoConfiguration.objects.filter(pk=1).first()


def raw_rows(tenant) -> list[tuple]:
    """What the database holds, read with SQL (not through the model)."""
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM identity_ssoconfiguration")
        return cursor.fetchall()


def configure_committed(tenant, provider, django_db_blocker, **fields) -> SsoConfiguration:
    """SSO for a committed workspace (`fresh_tenant`: servers in other processes see it) through
    `provider` on loopback, with its groups mapped to roles, as its owner."""
    fields = {
        "issuer": provider.issuer,
        "client_id": f"foundry-{tenant.slug}",
        "scopes": "openid email profile groups",
        "roles_claim": "groups",
        "role_map": {"foundry-admins": "admin"},
        **fields,
    }
    with django_db_blocker.unblock():
        tenant.http_allowed_networks = ["127.0.0.0/8"]  # where the test IdP listens
        tenant.save(update_fields=["http_allowed_networks"])
        with schema_context(tenant.schema_name):
            return sso_configure(actor=tenant_user(tenant, f"owner@{tenant.slug}.test"), **fields)


def bearer_client(tenant, token: str) -> Client:
    """A client on the workspace's host sending `token` as its bearer; it sees a 500 the way a
    caller does, instead of the traceback (raise_request_exception=False)."""
    return Client(
        raise_request_exception=False, HTTP_HOST=f"{tenant.slug}.localhost", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def unsigned_jwt(kid: str) -> str:
    """A JWT anyone can make: well formed, naming key `kid`, its signature no signature."""

    def b64(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = b64({"alg": "RS256", "kid": kid, "typ": "JWT"})
    claims = b64({"iss": "x", "sub": "s", "aud": "a", "exp": 4_000_000_000, "iat": 1_700_000_000})
    return f"{header}.{claims}.{base64.urlsafe_b64encode(b'not-a-signature').rstrip(b'=').decode()}"
