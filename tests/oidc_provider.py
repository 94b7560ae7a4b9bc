"""A real OpenID Connect provider for tests: panva's `oidc-provider` (tests/idp/server.mjs) on loopback.

    def test_it(oidc_provider_factory):
        idp = oidc_provider_factory(
            clients=[{"client_id": "foundry", "client_secret": "s3cret", "redirect_uris": [CALLBACK],
                      "post_logout_redirect_uris": [HOME], "audience": "api://foundry"}],
            accounts={"ada": {"sub": "ada-1", "email": "ada@acme.test", "email_verified": True,
                              "name": "Ada", "groups": ["admins"]}},
        )
        callback = idp.follow_login(authorize_url, "ada")   # authorize_url: from our /sso/login/
        token = idp.access_token("foundry", "ada")          # a JWT for the "api://foundry" audience

Other conftests import the fixture: `from tests.oidc_provider import oidc_provider_factory`.
Node and tests/idp/node_modules come from `bin/dev test`.
"""

import base64
import hashlib
import html
import json
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

IDP_DIR = Path(__file__).resolve().parent / "idp"
START_TIMEOUT = 20.0
# Private JWK members; what is left is the public key.
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}
# The IdP's pages are our own (server.mjs) or oidc-provider's fixed templates: regexes suffice.
_FORM = re.compile(r'<form[^>]* action="(?P<action>[^"]+)"[^>]*>(?P<body>.*?)</form>', re.S)
_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class OidcFlowError(AssertionError):
    """The IdP answered a browserless flow with something other than the expected next step."""


def generate_key(alg: str = "RS256", kid: str | None = None) -> dict:
    """A new private signing JWK (RS256 or ES256) with kid, alg and use set."""
    if alg == "RS256":
        jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048), as_dict=True)
    elif alg == "ES256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    else:
        raise ValueError(f"unsupported alg {alg!r}")
    # PyJWT marks private keys key_ops=["sign"], which oidc-provider then refuses for verifying its own JWTs.
    jwk.pop("key_ops", None)
    return {**jwk, "kid": kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", "alg": alg, "use": "sig"}


def public_jwk(private_jwk: dict) -> dict:
    return {k: v for k, v in private_jwk.items() if k not in _PRIVATE_MEMBERS}


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node() -> str:
    node = shutil.which("node")
    if not node or not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(
            "the test OpenID provider needs node and tests/idp/node_modules: run `bin/dev test` (which installs them)"
        )
    return node


class _Hub:
    """One Node.js process (`server.mjs --hub`) serving every provider this test process starts:
    a provider costs no Node.js start (about a second of CPU). Requests and answers are JSON
    lines on its stdin and stdout; its stderr goes to a file, read when it fails."""

    def __init__(self) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 — open as long as the hub runs
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [_node(), str(IDP_DIR / "server.mjs"), "--hub"],
            cwd=IDP_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        if self._read() != "HUB READY":
            raise RuntimeError(f"the test OpenID provider hub did not start:\n{self._stderr()}")

    def alive(self) -> bool:
        return self._proc.poll() is None

    def ask(self, request: dict) -> dict:
        with self._lock:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            answer = self._read()
        if not isinstance(answer, dict):
            raise RuntimeError(f"the test OpenID provider hub stopped:\n{self._stderr()}")
        return answer

    def _read(self):
        ready = select.select([self._proc.stdout], [], [], START_TIMEOUT)[0]
        line = self._proc.stdout.readline() if ready else ""
        return json.loads(line) if line else None

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]


_hubs: dict[int, _Hub] = {}


def _hub() -> _Hub:
    """This process's hub, started on first use (a new one if it died); it exits with the
    process (its stdin closes)."""
    hub = _hubs.get(os.getpid())
    if hub is None or not hub.alive():
        hub = _hubs[os.getpid()] = _Hub()
    return hub


class OidcProvider:
    """One oidc-provider process. `keys[0]` signs ID and access tokens; all keys are in the JWKS."""

    def __init__(
        self,
        clients: list[dict],
        accounts: dict[str, dict],
        keys: list[dict] | None = None,
        *,
        access_token_ttl: int = 600,
        id_token_ttl: int = 600,
    ) -> None:
        self.clients = clients
        self.accounts = accounts
        self.keys = keys or [generate_key()]
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.startup_seconds = 0.0
        self._running = False
        self._metadata: dict | None = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # --- process --------------------------------------------------------------------------
    def _start(self) -> None:
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "keys": self.keys,
            "clients": self.clients,
            "accounts": self.accounts,
            "access_token_ttl": self.access_token_ttl,
            "id_token_ttl": self.id_token_ttl,
        }
        started = time.monotonic()
        answer = _hub().ask({"start": config})
        if answer.get("ready") != self.issuer:
            raise RuntimeError(f"the test OpenID provider did not start: {answer.get('error', answer)}")
        self._running = True
        self.startup_seconds = time.monotonic() - started

    def _halt(self) -> None:
        if self._running:
            _hub().ask({"stop": self.port})
            self._running = False

    def restart(self, keys: list[dict] | None = None, accounts: dict[str, dict] | None = None) -> None:
        """Stop, then start on the same port (same issuer) with new keys and/or accounts.
        Sessions, codes and opaque state are gone; tokens already issued stay verifiable
        only if their key is still in `keys`."""
        self._halt()
        if keys is not None:
            self.keys = keys
        if accounts is not None:
            self.accounts = accounts
        self._start()

    def stop(self) -> None:
        self._halt()

    def set_accounts(self, accounts: dict[str, dict]) -> None:
        """Replace the accounts of the running provider (sessions stay)."""
        response = httpx.put(f"{self.issuer}/__test/accounts", json=accounts)
        assert response.status_code == 204, response.text
        self.accounts = accounts

    # --- configuration --------------------------------------------------------------------
    def client(self, client_id: str) -> dict:
        return next(c for c in self.clients if c["client_id"] == client_id)

    @property
    def metadata(self) -> dict:
        """The discovery document (/.well-known/openid-configuration)."""
        if self._metadata is None:
            response = httpx.get(f"{self.issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            self._metadata = response.json()
        return self._metadata

    def jwks(self) -> dict:
        response = httpx.get(self.metadata["jwks_uri"])
        response.raise_for_status()
        return response.json()

    # --- browserless flows ----------------------------------------------------------------
    def _on_idp(self, url: httpx.URL) -> bool:
        return f"{url.scheme}://{url.netloc.decode()}" == self.issuer

    def _browse(self, url: str, *, login: str | None, cookies: httpx.Cookies | None) -> str:
        """Play a browser from `url`: follow the IdP's redirects, submit its self-submitting forms
        (the form a browser's JavaScript would post) and its login form as `login`; return the
        first URL off the IdP that it redirects to. `cookies` (kept up to date) is the IdP session."""
        with httpx.Client(cookies=cookies, timeout=10) as http:
            response = http.get(url)
            for _ in range(20):
                if response.is_redirect:
                    location = response.url.join(response.headers["location"])
                    if not self._on_idp(location):
                        if cookies is not None:
                            cookies.update(http.cookies)
                        return str(location)
                    response = http.get(location)
                    continue
                form = _FORM.search(response.text) if response.status_code == 200 else None
                action = response.url.join(html.unescape(form["action"])) if form else None
                if action is None or not self._on_idp(action) or "Unknown user" in response.text:
                    raise OidcFlowError(f"{response.status_code} at {response.url}:\n{response.text[:2000]}")
                fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN_INPUT.findall(form["body"])}
                if 'name="login"' in form["body"]:
                    if login is None:
                        raise OidcFlowError(f"the IdP asks to sign in at {response.url}, and no login was given")
                    fields["login"] = login
                response = http.post(action, data=fields)
        raise OidcFlowError(f"too many steps from {url}")

    def follow_login(self, authorize_url: str, login: str | None, *, cookies: httpx.Cookies | None = None) -> str:
        """Play the browser from a complete authorization URL, signing in as `login` when asked;
        the URL the IdP finally redirects to (the client's callback, with code, state and iss, or
        error). Pass `cookies` to keep the IdP session across calls; `login=None` expects that
        session to suffice."""
        return self._browse(authorize_url, login=login, cookies=cookies)

    def authorize(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        login: str | None,
        state: str,
        nonce: str,
        code_challenge: str,
        scope: str = "openid email profile groups",
        extra: dict[str, str] | None = None,
        cookies: httpx.Cookies | None = None,
    ) -> httpx.URL:
        """An authorization code request with PKCE (S256), signed in as `login`; the callback URL."""
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            **(extra or {}),
        }
        url = httpx.URL(self.metadata["authorization_endpoint"], params=params)
        return httpx.URL(self.follow_login(str(url), login, cookies=cookies))

    def token(self, *, client_id: str, code: str, redirect_uri: str, code_verifier: str) -> dict:
        """Redeem an authorization code (client_secret_post); the token response."""
        response = httpx.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
                "client_id": client_id,
                "client_secret": self.client(client_id)["client_secret"],
            },
        )
        if response.status_code != 200:
            raise OidcFlowError(f"token endpoint: {response.status_code} {response.text}")
        return response.json()

    def tokens(self, client_id: str, login: str, redirect_uri: str | None = None) -> dict:
        """The whole code flow with PKCE for `login`; the token response (access_token, id_token…)."""
        redirect_uri = redirect_uri or self.client(client_id)["redirect_uris"][0]
        verifier, challenge = pkce_pair()
        callback = self.authorize(
            client_id=client_id,
            redirect_uri=redirect_uri,
            login=login,
            state=secrets.token_urlsafe(8),
            nonce=secrets.token_urlsafe(8),
            code_challenge=challenge,
        )
        if "code" not in callback.params:
            raise OidcFlowError(f"no code in the callback {callback}")
        return self.token(
            client_id=client_id, code=callback.params["code"], redirect_uri=redirect_uri, code_verifier=verifier
        )

    def access_token(self, client_id: str, login: str, redirect_uri: str | None = None) -> str:
        """A JWT access token for `login`, audience: the client's configured `audience`."""
        return self.tokens(client_id, login, redirect_uri)["access_token"]

    def follow_logout(self, end_session_url: str, *, cookies: httpx.Cookies) -> str:
        """Play the browser through RP-initiated logout (the IdP's page submits itself); the URL
        the IdP finally redirects to (the post_logout_redirect_uri, with state)."""
        return self._browse(end_session_url, login=None, cookies=cookies)


@pytest.fixture
def oidc_provider_factory() -> Iterator[Callable[..., OidcProvider]]:
    """make(clients=[...], accounts={...}, keys=None, **ttls) -> a started OidcProvider; all stop after the test."""
    started: list[OidcProvider] = []

    def make(
        *, clients: list[dict], accounts: dict[str, dict], keys: list[dict] | None = None, **options
    ) -> OidcProvider:
        idp = OidcProvider(clients, accounts, keys, **options)
        started.append(idp)
        return idp

    yield make
    for idp in started:
        idp.stop()
