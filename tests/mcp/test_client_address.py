"""Behind the platform's own proxies (FOUNDRY_TRUSTED_PROXIES), /mcp's client address is taken from
X-Forwarded-For too (foundry/proxies.py `forwarded_apply`, applied by the MCP gateway), as docs/
limits.md says of every request. Django's middleware did it for the rest, and /mcp is served
outside it: every audit event of a change made through MCP named the proxy. Found by a review."""

import importlib
import ipaddress
import json
import sys

import pytest

from tests.asgi_calls import asgi_post
from tests.conftest import audit_events
from tests.mcp.conftest import workspace_make
from tests.runs.conftest import FINANCE, TRIAGE

CLIENT = "203.0.113.7"


@pytest.fixture
def asgi(django_db_setup, django_db_blocker, settings):
    settings.FOUNDRY_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.0/8")]
    with django_db_blocker.unblock():
        ws = workspace_make(FINANCE, TRIAGE)
    saved = sys.modules.pop("foundry.asgi", None)
    try:
        module = importlib.import_module("foundry.asgi")
        with django_db_blocker.unblock():  # the gateway's threads read the committed workspace
            yield module, ws
    finally:
        sys.modules.pop("foundry.asgi", None)
        if saved is not None:
            sys.modules["foundry.asgi"] = saved


def test_an_mcp_change_is_audited_with_the_clients_address_behind_a_trusted_proxy(asgi):
    """A run started through MCP from 203.0.113.7 through a trusted proxy (peer 127.0.0.1): its
    `run.start` event names 203.0.113.7, as the same start through the REST API would."""
    module, ws = asgi
    payload = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "run_agent", "arguments": {"agent": "invoice-triage", "input": "Hi."}},
    }
    headers = [
        (b"mcp-protocol-version", b"2025-06-18"),
        (b"authorization", f"Bearer {ws.tokens['owner']}".encode()),
        (b"x-forwarded-for", CLIENT.encode()),
    ]
    answer = asgi_post(
        module.application,
        f"{ws.slug}.localhost",
        json.dumps(payload).encode(),
        headers,
        session_manager=module.mcp.session_manager,
    )
    assert answer.status == 200, answer.body
    events = audit_events(ws.schema, action="run.start")
    assert len(events) == 1
    assert events[0].data.get("via") == "mcp"
    assert events[0].ip == CLIENT, f"audited from {events[0].ip!r}, the proxy, not the client {CLIENT}"
