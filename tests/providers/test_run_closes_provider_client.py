"""A run's attempt closes its model provider's HTTP client when it ends. It did not: the SDK's
client, in reference cycles, held a keep-alive socket to the model endpoint until a full garbage
collection, which in a worker came after an unpredictable number of runs (8 failing runs in a row:
1, 2, ... 8 sockets open, openai and anthropic alike)."""

import gc
import os

import pytest
from django_tenants.utils import schema_context

from apps.providers.services import credential_set
from apps.runs.services import run_start
from tests.conftest import tenant_user
from tests.providers.fake_models import Reply
from tests.runs.conftest import FINANCE, advance, agent_yaml, deploy

KEY = "sk-test-abcdef123456"
RUNS = 8


def sockets_to(port: int) -> int:
    """TCP sockets of this process (client side) whose peer is 127.0.0.1:`port`, in any state."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_failed_runs_model_client_is_closed_when_its_attempt_ends(acme, keys, server, provider):
    """A run whose model call fails (the endpoint answers HTTP 500) ends, however it ends, with no
    socket of its own left open to the endpoint: a worker holds none between runs."""
    base = server.origin + "/v1" if provider == "openai" else server.origin
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        credential_set(actor=owner, provider=provider, api_key=KEY, base_url=base)
    agent = deploy(acme, FINANCE, agent_yaml(provider=provider))
    gc.collect()
    assert sockets_to(server.port) == 0
    open_after_each = []
    for _ in range(RUNS):
        server.queue(Reply(500, {"error": {"message": "upstream failed"}}))
        with schema_context("acme"):
            run = run_start(actor=owner, agent=agent, input="Triage INV-7.")
        run = advance(run, "acme")
        assert (run.status, run.reason) == ("failed", "model_failed"), run.message
        open_after_each.append(sockets_to(server.port))
    gc.collect()
    after_full_collection = sockets_to(server.port)
    assert max(open_after_each) == 0, (
        f"sockets to the model endpoint still open after each of {RUNS} finished runs: {open_after_each}"
        f" (after gc.collect(): {after_full_collection})"
    )
