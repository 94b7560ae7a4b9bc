"""run_agent's wait re-admits the caller before each look (foundry/mcp/context.py caller_recheck),
and goes on as the caller resolved then: a member demoted meanwhile is checked with the new role
from the next look on, as a new request would be (docs/mcp.md)."""

import ipaddress
import json
import time

import anyio
import httpx2
import pytest
from django.test import Client
from django_tenants.utils import schema_context

from tests.conftest import tenant_user
from tests.identity.conftest import configure_committed
from tests.identity.test_login import ACCOUNTS, account, client_config, finish, start
from tests.mcp.conftest import mcp_url
from tests.mcp.test_call_lifetime import _only_slot_held, sse_result
from tests.runs.conftest import FINANCE, TRIAGE, deploy

pytestmark = pytest.mark.anyio


@pytest.fixture
def loopback_allowed(settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]


def _role_set(tenant, email: str, role: str) -> None:
    from apps.accounts.models import User
    from apps.accounts.services import member_role_change

    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        member_role_change(actor=owner, member=User.objects.get(email=email), role=role)


@pytest.fixture
def operator_idp_token(fresh_tenant, oidc_provider_factory, django_db_blocker, loopback_allowed):
    """An IdP access token of ada, an operator member (the role stored in Foundry: the workspace
    maps no roles from the token), in a workspace with invoice-triage deployed."""
    slug = fresh_tenant.slug
    accounts = {**ACCOUNTS, "ada": account("ada", email=f"ada@{slug}.test")}
    provider = oidc_provider_factory(clients=[client_config(fresh_tenant)], accounts=accounts)
    configure_committed(
        fresh_tenant,
        provider,
        django_db_blocker,
        client_secret="acme-client-secret-0123456789",
        roles_claim="",
        role_map={},
        audience=f"api://foundry-{slug}",
    )
    with django_db_blocker.unblock():
        client, authorize = start(fresh_tenant, Client(HTTP_HOST=f"{slug}.localhost"))
        assert finish(client, provider.follow_login(authorize, "ada")).status_code == 302
        _role_set(fresh_tenant, f"ada@{slug}.test", "operator")
        deploy(fresh_tenant, FINANCE, TRIAGE)
    return provider.access_token(f"foundry-{slug}", "ada")


def _post(port: int, slug: str, token: str, name: str, arguments: dict) -> httpx2.Response:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    )
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-06-18",
        "Host": f"{slug}.localhost:{port}",
        "Authorization": f"Bearer {token}",
    }
    return httpx2.post(mcp_url(port), content=body, headers=headers, timeout=30)


async def test_a_member_demoted_to_viewer_during_a_run_agent_wait_is_refused_from_the_next_look(
    mcp_port, fresh_tenant, operator_idp_token, django_db_blocker
):
    """ada (operator) calls run_agent with wait_seconds=5; 1.5 s in, an owner makes her a viewer.
    A new run_agent request from her is then refused (`forbidden: run_agent needs runs.start.`),
    and so is the call that waits, at its next look (it had gone on as the operator it started as)."""
    slug = fresh_tenant.slug
    out = {}

    def post():
        started = time.monotonic()
        out["response"] = _post(
            mcp_port,
            slug,
            operator_idp_token,
            "run_agent",
            {"agent": "invoice-triage", "input": "Hi.", "wait_seconds": 5},
        )
        out["took"] = time.monotonic() - started

    def in_db(fn, *args):
        with django_db_blocker.unblock():
            return fn(*args)

    slot = await anyio.to_thread.run_sync(in_db, _only_slot_held, fresh_tenant)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, post)
            await anyio.sleep(1.5)
            await anyio.to_thread.run_sync(in_db, _role_set, fresh_tenant, f"ada@{slug}.test", "viewer")
    finally:
        await anyio.to_thread.run_sync(in_db, slot.release)

    # The control: a new request of hers, with the same token, is refused now.
    fresh = sse_result(
        await anyio.to_thread.run_sync(
            lambda: _post(mcp_port, slug, operator_idp_token, "run_agent", {"agent": "invoice-triage", "input": "Hi."})
        )
    )
    assert fresh["result"]["isError"], fresh
    assert "forbidden" in fresh["result"]["content"][0]["text"], fresh

    assert out["took"] >= 1.5, "the call ended before the demotion"
    result = sse_result(out["response"])
    assert "error" in result or result["result"]["isError"], (
        "after the demotion to viewer the wait went on as an operator and returned the run: "
        + json.dumps(result["result"].get("structuredContent", {}))[:200]
    )
