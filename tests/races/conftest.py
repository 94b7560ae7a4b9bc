"""Helpers for the race review: a rendezvous that lines two threads up at the same point of a
service (both past its check, before its write), then lets them go on together.

A rendezvous that times out does not fail the test: when the product serialises the two
callers (a lock taken before the check), the second never reaches the point while the first
waits there, and after `timeout` the first simply goes on alone. So the tests pass on a fixed
product and fail only because both callers really were between check and write at once."""

import threading

from django.db import connections

from tests.identity.conftest import idp, loopback_allowed  # noqa: F401 - fixtures for test_sso_races.py


class Rendezvous:
    def __init__(self, parties: int = 2, timeout: float = 3.0):
        self._barrier = threading.Barrier(parties, timeout=timeout)
        self.met = False
        self.done = False  # once met (or given up on), later calls pass straight through

    def wait(self) -> None:
        if self.done:
            return
        try:
            self._barrier.wait()
            self.met = True
        except threading.BrokenBarrierError:
            pass  # serialised by the product: go on alone
        finally:
            self.done = True


def run_together(*calls, timeout: float = 60.0) -> list:
    """Run each zero-argument callable in a thread of its own (its own database connection, so
    its work commits on its own); [(result, exception)] in the order given."""
    out: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def body(n, call):
        try:
            start.wait(10)
            out[n] = (call(), None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out[n] = (None, exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(n, call)) for n, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a racer hung"
    return out


def jit_sso_configuration(issuer: str = "https://idp.example.test"):
    """An unsaved SSO configuration with just-in-time members, as a sign-in reads it."""
    from django.utils import timezone

    from apps.identity.models import SsoConfiguration

    now = timezone.now()
    return SsoConfiguration(
        issuer=issuer,
        client_id="foundry",
        jit_enabled=True,
        authorization_endpoint=f"{issuer}/authorize",
        token_endpoint=f"{issuer}/token",
        jwks_uri=f"{issuer}/jwks",
        discovered_at=now,
        updated_at=now,
    )
