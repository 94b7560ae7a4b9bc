"""A workspace's identity provider whose key set is slow (it answers its head at once, then
trickles its body): one fetch of a set at a time (apps/identity/jwks.py `_fetch_lease`)."""

import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from django.utils import timezone

from apps.identity import jwks
from apps.identity.jwks import JwksUnavailable, jwks_key
from foundry.runtime.network import NetworkPolicy
from tests.stub_http import StubHTTPServer

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))


class SlowIdp:
    """A key set on 127.0.0.1 that sends its head at once, then trickles its body a byte every
    `step` seconds (never finishing within any timeout); counts the connections made to it."""

    def __init__(self, step: float = 0.2):
        self.jwks_connections = 0
        self.stopped = threading.Event()
        idp = self

        class Trickle(BaseHTTPRequestHandler):
            def do_GET(self):
                idp.jwks_connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not idp.stopped.wait(step):
                    self.wfile.write(b" ")
                    self.wfile.flush()

            def log_message(self, *args):
                pass

        self.httpd = StubHTTPServer(("127.0.0.1", 0), Trickle)
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


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
