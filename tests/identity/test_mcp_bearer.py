"""The workspace IdP's access tokens on MCP: the same member and role as on the API, refused on
another workspace's host, and the role from the token's groups deciding what the tools allow."""

import jwt
import pytest
from django.test import Client

from tests.identity.conftest import configure_committed
from tests.identity.test_login import ACCOUNTS, account, client_config, finish, start
from tests.mcp.conftest import mcp_client

pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def signed_in(fresh_tenant, oidc_provider_factory, django_db_blocker):
    """A committed workspace with SSO through a real provider, where ada signed in once."""
    provider = oidc_provider_factory(clients=[client_config(fresh_tenant)], accounts=ACCOUNTS)
    slug = fresh_tenant.slug
    accounts = {**ACCOUNTS, "ada": account("ada", email=f"ada@{slug}.test", groups=["foundry-admins"])}
    provider.set_accounts(accounts)
    configure_committed(
        fresh_tenant,
        provider,
        django_db_blocker,
        client_secret="acme-client-secret-0123456789",
        role_map={"foundry-admins": "admin", "foundry-devs": "developer"},
        audience=f"api://foundry-{slug}",
    )
    with django_db_blocker.unblock():
        client, authorize = start(fresh_tenant, Client(HTTP_HOST=f"{slug}.localhost"))
        assert finish(client, provider.follow_login(authorize, "ada")).status_code == 302
    return provider, accounts


@pytest.mark.anyio
async def test_an_idp_access_token_works_on_mcp_with_the_mapped_role(mcp_port, fresh_tenant, signed_in):
    provider, accounts = signed_in
    slug = fresh_tenant.slug
    token = provider.access_token(f"foundry-{slug}", "ada")
    async with mcp_client(mcp_port, slug, token) as client:
        result = await client.call_tool("list_agents", {})
        assert not result.is_error, result
        denied = await client.call_tool("deploy_agent", {"name": "nope", "version": 1})
        assert denied.is_error and "forbidden" not in denied.content[0].text  # an admin may deploy: not found
    provider.set_accounts({**accounts, "ada": {**accounts["ada"], "groups": []}})
    viewer = provider.access_token(f"foundry-{slug}", "ada")
    async with mcp_client(mcp_port, slug, viewer) as client:
        denied = await client.call_tool("deploy_agent", {"name": "nope", "version": 1})
        assert denied.is_error and "forbidden" in denied.content[0].text


@pytest.mark.anyio
async def test_an_idp_access_token_is_refused_on_another_workspace(mcp_port, fresh_tenant, signed_in):
    import httpx2

    provider, _accounts = signed_in
    token = provider.access_token(f"foundry-{fresh_tenant.slug}", "ada")
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"http://127.0.0.1:{mcp_port}/mcp",
            headers={"Host": f"globex.localhost:{mcp_port}", "Authorization": f"Bearer {token}"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.anyio
async def test_a_token_for_the_mcp_resource_itself_is_accepted_there_only(mcp_port, fresh_tenant, signed_in):
    """RFC 8707/9728: a client may ask the provider for a token for the resource the metadata
    names (`<workspace>/mcp`); MCP accepts that audience beside the configured one, the API not."""
    import httpx2

    from tests.identity.test_bearer import signed

    provider, _accounts = signed_in
    slug = fresh_tenant.slug
    good = jwt.decode(provider.access_token(f"foundry-{slug}", "ada"), options={"verify_signature": False})
    for_mcp = signed(provider, good, aud=f"http://{slug}.localhost:{mcp_port}/mcp")
    async with mcp_client(mcp_port, slug, for_mcp) as client:
        assert not (await client.call_tool("list_agents", {})).is_error
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"http://127.0.0.1:{mcp_port}/api/v1/workspace",
            headers={"Host": f"{slug}.localhost:{mcp_port}", "Authorization": f"Bearer {for_mcp}"},
        )
    assert (response.status_code, response.json()["error"]["code"]) == (401, "token_audience_invalid")
