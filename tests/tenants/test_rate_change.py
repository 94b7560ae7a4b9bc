"""Raising a workspace's request rate while a client is being refused (docs/limits.md, "Noisy
neighbours": "An operator raising a limit meanwhile takes effect when that wait ends")."""

import time
from types import SimpleNamespace

from django.core.management import call_command

from apps.tenants.limits import refusals_forget, request_admit
from tests.tenants.test_credential_share import _limits_fresh  # noqa: F401 — autouse: fresh limits


def test_raising_requests_per_second_does_not_lengthen_the_wait(acme):
    """A client spends its whole burst at 1 request/s (credential: 1 every 2 s, burst 5); its next
    request would be admitted ~2 s later. An operator raises the workspace to 100/s (burst kept).
    Once the wait the client was told ends, the raised limit must admit it — a higher limit must
    never refuse what the lower one would have admitted. Today the bucket's state (GCRA TAT),
    stored on the old rate's time scale, is read against the new rate's much shorter tolerance,
    so the client is refused for ~10 s more."""
    call_command("tenant_limits", "acme", "--requests-per-second", "1", "--burst", "10")
    client = SimpleNamespace(pk=910001)
    while request_admit(tenant_id=acme.pk, principal=client, write=False).allowed:
        pass
    refused = request_admit(tenant_id=acme.pk, principal=client, write=False)
    assert not refused.allowed and refused.retry_after <= 2.1, refused
    call_command("tenant_limits", "acme", "--requests-per-second", "100")
    refusals_forget()
    time.sleep(refused.retry_after + 0.1)
    decision = request_admit(tenant_id=acme.pk, principal=client, write=False)
    assert decision.allowed, f"refused for {decision.retry_after:.1f} s more after the limit was raised 100x"


def test_lowering_requests_per_second_does_not_hand_out_a_fresh_burst(acme):
    """A client spends its whole burst (credential: burst 5) at 10 requests/s; an operator then
    lowers the workspace to 1/s, burst unchanged. The client has just used 5 requests at once, the
    burst both the old and the new limit allow (docs/limits.md: a credential gets half the
    workspace's burst), so its next requests must wait. Today the bucket's state, kept on the old
    rate's time scale, reads as almost empty against the new rate's longer tolerance: the client
    is admitted 4 more at once — 9 within a moment, nearly twice the burst, right after a
    downgrade."""
    call_command("tenant_limits", "acme", "--requests-per-second", "10", "--burst", "10")
    client = SimpleNamespace(pk=910002)
    admitted = 0
    while request_admit(tenant_id=acme.pk, principal=client, write=False).allowed:
        admitted += 1
    assert admitted == 5
    call_command("tenant_limits", "acme", "--requests-per-second", "1")
    refusals_forget()
    more = 0
    while request_admit(tenant_id=acme.pk, principal=client, write=False).allowed and more < 20:
        more += 1
    assert more == 0, f"{admitted + more} requests admitted at once after the downgrade; the burst is 5"
