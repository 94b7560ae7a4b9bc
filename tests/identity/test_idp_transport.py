"""How the platform reaches a workspace's identity provider: discovery within its time bound, lookups
included, and plain http never to a public address — checked on the address each call connects
to, not only when the configuration was saved (docs/sso.md)."""

import contextlib
import ipaddress
import socket
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.identity import services
from apps.identity.jwks import JwksUnavailable, jwks_key
from apps.identity.login import SsoLoginFailed
from apps.identity.models import SsoConfiguration
from apps.identity.oidc import TenantOIDCBackend
from foundry.manifests.validation import url_host
from foundry.runtime import network


def _length(head: bytes) -> int:
    for line in head.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return 0


class Listener:
    """A TCP listener on 127.0.0.1 (ephemeral port) recording every connection and its first bytes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(0.5)
            try:
                data = b""
                while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.received.append(data)
                body = b'{"access_token": "a", "id_token": "b", "token_type": "Bearer"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        """Stop listening, and the thread: closing alone wakes no accept() blocked in it on Linux,
        and the port went on answering for the rest of the worker's life."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def public_loopback(monkeypatch):
    """The name idp.corp.test resolves to 127.0.0.1, which counts as a public address meanwhile."""
    real_getaddrinfo, real_class = socket.getaddrinfo, network.address_class

    def resolve(host, port, *args, **kwargs):
        if host == "idp.corp.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def as_public(ip):
        return None if ip == ipaddress.ip_address("127.0.0.1") else real_class(ip)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(network, "address_class", as_public)


def test_discovery_of_a_plain_http_issuer_ends_within_the_discovery_timeout(acme, monkeypatch):
    """Discovery takes at most DISCOVERY_TIMEOUT_SECONDS in all, the lookup that checks a plain-http
    issuer's address included: a name whose DNS server never answers does not hold the owner's
    request (and the configuration's locks) for as long as the system resolver waits. Here the
    stalled lookup lasts 3 s and discovery is allowed 0.5 s."""
    monkeypatch.setattr(services, "DISCOVERY_TIMEOUT_SECONDS", 0.5)
    real = socket.getaddrinfo
    release = threading.Event()

    def stalling(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".stall.test"):
            release.wait(3)  # a DNS server that does not answer
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", stalling)
    try:
        with schema_context(acme.schema_name):
            started = time.monotonic()
            with pytest.raises(ValidationError):
                services.sso_discover("http://idp.stall.test")
            elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 1.5, f"discovery took {elapsed:.1f} s, past its 0.5 s bound"


def test_the_token_request_is_not_sent_over_plain_http_to_a_public_address(acme, public_loopback, caplog):
    """Plain http reaches only networks an operator allowed: the token request, which carries the
    client secret and the authorization code, is refused when the endpoint's name resolves to a
    public address at sign-in (re-pointed since the configuration was saved), before anything
    is sent.

    No public address can be bound in a test: 127.0.0.1 stands for one here (address_class
    answers "public" for it), reached by the name idp.corp.test."""
    listener = Listener()
    issuer = f"http://idp.corp.test:{listener.port}"
    config = SsoConfiguration(
        issuer=issuer,
        client_id="foundry",
        client_secret_encrypted="",
        authorization_endpoint=f"{issuer}/authorize",
        token_endpoint=f"{issuer}/token",
        jwks_uri=f"{issuer}/jwks",
        signing_algs=["RS256"],
        discovered_at=timezone.now(),
        updated_at=timezone.now(),
    )
    backend = TenantOIDCBackend()
    backend.config = config
    payload = {"client_id": "foundry", "client_secret": "s3cret-client-secret", "grant_type": "authorization_code"}
    try:
        with schema_context(acme.schema_name), pytest.raises(SsoLoginFailed) as refused:
            backend.get_token(payload)
    finally:
        listener.close()
    assert listener.received == [], "something was sent over plain http to a public address"
    assert refused.value.code == "idp_unreachable"
    assert "plain http is refused" in caplog.text  # for the operator; the sign-in page says less


def test_signing_keys_are_not_fetched_over_plain_http_from_a_public_address(acme, public_loopback):
    """The key set that vouches for ID tokens and bearer tokens is never taken over plain http from
    a public address (anyone on the path could hand over keys of their own)."""
    listener = Listener()
    try:
        with schema_context(acme.schema_name), pytest.raises(JwksUnavailable, match="plain http is refused"):
            uri = f"http://idp.corp.test:{listener.port}/jwks"
            jwks_key(uri, "k1", services.sso_network_policy, configured=timezone.now())
    finally:
        listener.close()
    assert listener.received == []


def test_an_issuer_with_an_internationalised_host_is_discovered(acme, idp, loopback_allowed):
    """Its host was declared as urlsplit spells it (bücher.localhost) and compared as the client
    reads it (xn--bcher-kva.localhost): a reachable provider was refused `discovery_host_undeclared`,
    in the agent http tool's words. The token, userinfo and key set calls declared it alike."""
    idp.issuer = f"http://bücher.localhost:{idp.httpd.server_address[1]}"
    with schema_context(acme.schema_name):
        found = services.sso_discover(idp.issuer)
    assert found["token_endpoint"] == f"{idp.issuer}/token"
    assert url_host("https://BÜCHER.example./x") == "xn--bcher-kva.example"
    assert url_host("no url") == ""
