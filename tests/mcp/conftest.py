"""MCP tests: the ASGI application under uvicorn on loopback, reached with the MCP SDK's own
Streamable HTTP client. A workspace is chosen by the Host header, as in production."""

import sys
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import ROOT, free_port, server_env, server_process


@pytest.fixture(scope="session")
def mcp_port(django_db_setup) -> int:
    """uvicorn serving foundry.asgi (Django + /mcp), for the whole session."""
    port = free_port()
    log = ROOT / "test-artifacts" / f"uvicorn-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "foundry.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-access-log",
    ]
    with server_process(command, port=port, env=server_env(), log=log):
        yield port


def mcp_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/mcp"


@asynccontextmanager
async def mcp_client(port: int, slug: str, token: str | None, **headers):
    """An initialized SDK client on `slug`'s host, authenticated with `token`."""
    base = {"Host": f"{slug}.localhost:{port}", **headers}
    if token:
        base["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(headers=base, timeout=30) as http:
        transport = streamable_http_client(mcp_url(port), http_client=http)
        async with Client(transport) as client:
            yield client


@pytest.fixture
def tokens(fresh_tenant, django_db_blocker) -> dict[str, str]:
    """API tokens of the fresh workspace (committed: the server sees them): one per role with
    every scope, and `reader`: a developer token with the read scope only."""
    from django_tenants.utils import schema_context

    from apps.accounts.permissions import Role
    from apps.tokens.services import token_issue

    every = ["read", "write", "run", "admin"]
    with django_db_blocker.unblock(), schema_context(fresh_tenant.schema_name):
        issued = {
            role: token_issue(actor="test", name=f"mcp-{role}", role=role, scopes=every).plaintext for role in Role
        }
        issued["reader"] = token_issue(actor="test", name="mcp-reader", role="developer", scopes=["read"]).plaintext
    return issued
