"""MCP tests: the ASGI application under uvicorn on loopback, reached with the MCP SDK's own
Streamable HTTP client. A workspace is chosen by the Host header, as in production.

The server sees committed rows only: workspaces are provisioned outside the test transaction
(`fresh_tenant` per test, or `workspace_make` once per module when its tests may share one)."""

import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from apps.tenants.models import Tenant
from tests.conftest import PASSWORD


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


def tokens_issue(tenant: Tenant) -> dict[str, str]:
    """API tokens of `tenant`: one per role with every scope, `reader` (a developer token with
    the read scope only) and `runner` (an operator token with the run scope only)."""
    from django_tenants.utils import schema_context

    from apps.accounts.permissions import Role
    from apps.tokens.services import token_issue

    every = ["read", "write", "run", "admin"]
    with schema_context(tenant.schema_name):
        issued = {
            role: token_issue(actor="test", name=f"mcp-{role}", role=role, scopes=every).plaintext for role in Role
        }
        issued["reader"] = token_issue(actor="test", name="mcp-reader", role="developer", scopes=["read"]).plaintext
        issued["runner"] = token_issue(actor="test", name="mcp-runner", role="operator", scopes=["run"]).plaintext
    return issued


@pytest.fixture
def tokens(fresh_tenant, django_db_blocker) -> dict[str, str]:
    """API tokens of the fresh workspace (committed: the server sees them), as `tokens_issue`."""
    with django_db_blocker.unblock():
        return tokens_issue(fresh_tenant)


@dataclass(frozen=True)
class Workspace:
    tenant: Tenant
    tokens: dict[str, str]

    @property
    def slug(self) -> str:
        return self.tenant.slug

    @property
    def schema(self) -> str:
        return self.tenant.schema_name


def workspace_make(*sources: str) -> Workspace:
    """A committed workspace with a viewer member, `tokens_issue`'s tokens and, given manifests,
    those published and the last one (an agent) deployed. Call with the database unblocked."""
    from django_tenants.utils import schema_context

    from apps.accounts.models import User
    from apps.accounts.permissions import Role
    from apps.tenants.services import tenant_provision
    from tests.runs.conftest import deploy

    slug = f"m{uuid.uuid4().hex[:10]}"
    tenant = tenant_provision(
        slug=slug, name=f"MCP Co {slug}", owner_email=f"owner@{slug}.test", owner_password=PASSWORD
    ).tenant
    with schema_context(tenant.schema_name):
        User.objects.create_user(f"viewer@{slug}.test", PASSWORD, role=Role.VIEWER)
    if sources:
        deploy(tenant, *sources)
    return Workspace(tenant, tokens_issue(tenant))


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    """`workspace_make` of the finance domain and the invoice-triage agent, one per test module
    (a module needing another workspace defines its own `ws`)."""
    from tests.runs.conftest import FINANCE, TRIAGE

    with django_db_blocker.unblock():
        return workspace_make(FINANCE, TRIAGE)


def token_prefix(token: str) -> str:
    """The public prefix of a token's plaintext (`af_<prefix>_<secret>`): its audit actor id."""
    return token.split("_")[1]


def tool_error(result) -> str:
    """The text of a tool error result (after the SDK's `Error executing tool <name>: `)."""
    assert result.is_error, result
    return result.content[0].text.split(": ", 1)[1]


@pytest.fixture
def in_db(django_db_blocker):
    """`await in_db(fn, *args, **kwargs)`: run a sync function on the database from an async test body
    (Django refuses the ORM on the event loop's thread; this runs it on a worker thread)."""

    async def call(fn, *args, **kwargs):
        with django_db_blocker.unblock():
            return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    return call
