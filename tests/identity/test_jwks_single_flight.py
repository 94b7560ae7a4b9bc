"""A workspace's identity provider whose key set is slow (it answers its head at once, then
trickles its body): one fetch of a set at a time (apps/identity/jwks.py `_fetch_lease`)."""

import ipaddress
import json
import socket
import threading
import time

import pytest
from django.utils import timezone

from apps.identity import jwks
from apps.identity.jwks import JwksUnavailable, jwks_key
from foundry.runtime.network import NetworkPolicy

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))


class SlowIdp:
    """An OpenID provider on 127.0.0.1 whose discovery document is served at once and whose key
    set (`/jwks`) sends its head, then trickles its body a byte every `step` seconds (never
    finishing within any sane timeout). Counts connections made to /jwks."""

    def __init__(self, step: float = 0.2):
        self.step = step
        self.jwks_connections = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode()
            if path == "/.well-known/openid-configuration":
                body = json.dumps(self.discovery()).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                return
            with self.lock:
                self.jwks_connections += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self.stopped.is_set():
                conn.sendall(b" ")
                time.sleep(self.step)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def slow_idp():
    server = SlowIdp(step=0.2)
    yield server
    server.close()


def test_concurrent_tokens_do_not_each_wait_on_a_slow_key_set(slow_idp, monkeypatch):
    """While no key set is cached, one request fetches it and the others wait JWKS_WAIT_SECONDS
    for that fetch, then fail (`jwks_unreachable`): at most one connection reaches the IdP, and
    one caller is held for its timeout. Each concurrent bearer request (anyone may send a made-up
    JWT; the API's rate is spent only after authentication) opened its own connection and waited
    the whole JWKS_TIMEOUT_SECONDS (5 s in production): a slow IdP of one workspace held every
    web thread, for every workspace on the worker (found by a review)."""
    monkeypatch.setattr(jwks, "JWKS_TIMEOUT_SECONDS", 1.0)
    uri = f"{slow_idp.issuer}/jwks"
    configured = timezone.now()
    outcomes: list[tuple[str, float]] = []
    start = threading.Barrier(8)

    def caller():
        start.wait()
        began = time.monotonic()
        try:
            jwks_key(uri, "made-up", lambda: LOOPBACK, configured=configured)
            outcomes.append(("ok", time.monotonic() - began))
        except JwksUnavailable as exc:
            outcomes.append((exc.code, time.monotonic() - began))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(outcomes) == 8
    assert all(code == "jwks_unreachable" for code, _ in outcomes), outcomes
    held = [seconds for _, seconds in outcomes if seconds >= 0.9]
    assert slow_idp.jwks_connections <= 1 and len(held) <= 1, (
        f"{slow_idp.jwks_connections} connections to the slow IdP; {len(held)} of 8 callers held "
        f"for the whole timeout: {sorted(round(s, 2) for _, s in outcomes)}"
    )
