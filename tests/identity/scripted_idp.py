"""A scripted OpenID provider on loopback whose every answer the test decides (token response,
userinfo, key set), signing with a key of the test's own: what an odd or hostile provider sends."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from tests.identity.conftest import OidcServer, configure
from tests.stub_http import StubHTTPServer

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_JWK = {**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "s1", "alg": "RS256"}


class ScriptedIdp:
    def __init__(self):
        idp = self
        self.token_response: dict | None = None
        self.token_error: dict = {"error": "invalid_grant"}  # the token endpoint's 400 while no token_response
        self.userinfo: dict | None = None
        self.token_requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def _send(self, body: dict, status: int = 200):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    return self._send(idp.discovery())
                if self.path == "/jwks":
                    return self._send({"keys": [PUBLIC_JWK]})
                if self.path == "/userinfo":
                    return self._send(idp.userinfo or {}, 200 if idp.userinfo is not None else 401)
                self._send({"error": "not_found"}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                idp.token_requests.append(parse_qs(self.rfile.read(length).decode()))
                if self.path == "/token":
                    return self._send(idp.token_response or idp.token_error, 200 if idp.token_response else 400)
                self._send({"error": "not_found"}, 404)

            def log_message(self, *args):
                pass

        self.httpd = StubHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def discovery(self) -> dict:
        return {**OidcServer.discovery(self), "id_token_signing_alg_values_supported": ["RS256"]}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "s1"})

    def claims(self, client_id: str, nonce: str, **claims) -> dict:
        """An ID token's claims for a sign-in to `client_id`: `claims` override, None leaves one out."""
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "aud": client_id,
            "sub": "sub-1",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": "newbie@acme.test",
            "email_verified": True,
        }
        base.update(claims)
        return {k: v for k, v in base.items() if v is not None}

    def id_token(self, client_id: str, nonce: str, **claims) -> str:
        return self.sign(self.claims(client_id, nonce, **claims))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def scripted_sso(tenant, idp: ScriptedIdp, **fields):
    return configure(tenant, idp, **fields)


def begin(tenant, client: Client | None = None, next_url: str | None = None) -> tuple[Client, str, str, str]:
    """Our /sso/login/ → (client, authorize URL, state, nonce)."""
    client = client or Client(HTTP_HOST=f"{tenant.slug}.localhost", raise_request_exception=False)
    response = client.get("/sso/login/" + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response.content[:300]
    query = parse_qs(urlsplit(response["Location"]).query)
    return client, response["Location"], query["state"][0], query["nonce"][0]
