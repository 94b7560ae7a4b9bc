"""The door of /mcp: the workspace by Host (421), Origin (403), a bearer token on every request
(401 naming the RFC 9728 metadata) — before the SDK reads the request."""

import httpx2
import pytest
from django_tenants.utils import schema_context

from apps.tokens.models import ApiToken
from apps.tokens.services import token_issue, token_revoke
from tests.identity.sso_rows import sso_stored
from tests.mcp.conftest import mcp_client, mcp_url, workspace_make

LIST_TOOLS = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        ws = workspace_make()
        with schema_context(ws.schema):
            revoked = token_issue(actor="test", name="gone", role="owner", scopes=["read"])
            token_revoke(actor="test", token=ApiToken.objects.get(pk=revoked.token.pk))
    return ws, revoked.plaintext


def post(port: int, host: str, body: str = LIST_TOOLS, **headers) -> httpx2.Response:
    base = {"Host": host, "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    return httpx2.post(mcp_url(port), content=body, headers={**base, **headers}, timeout=30)


def metadata_get(port: int, host: str) -> httpx2.Response:
    return httpx2.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", headers={"Host": host})


ISSUER = "https://idp.example.test/realms/acme"


def sso_set(tenant, django_db_blocker) -> str:
    """Single sign-on for `tenant` (its identity provider is the MCP endpoint's authorization server)."""
    with django_db_blocker.unblock():
        sso_stored(tenant, ISSUER, scopes="openid email")
    return ISSUER


def test_without_sso_a_401_names_no_metadata_and_there_is_none(mcp_port, ws):
    """MCP (Authorization): the protected resource metadata names at least one authorization
    server. A workspace without single sign-on has none, so its 401 is a plain bearer challenge
    and the metadata is 404: a client asks for a token rather than start OAuth discovery."""
    ws, _ = ws
    host = f"{ws.slug}.localhost:{mcp_port}"
    response = post(mcp_port, host)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    invalid = post(mcp_port, host, Authorization="Bearer af_000000000000_" + "x" * 43)
    assert invalid.headers["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="invalid_token"'

    metadata = metadata_get(mcp_port, host)
    assert (metadata.status_code, metadata.json()["error"]["code"]) == (404, "sso_not_configured")
    assert metadata.headers["access-control-allow-origin"] == "*"  # a browser client reads why


def test_with_sso_a_401_names_the_metadata_naming_the_workspaces_identity_provider(
    mcp_port, fresh_tenant, django_db_blocker
):
    issuer = sso_set(fresh_tenant, django_db_blocker)
    host = f"{fresh_tenant.slug}.localhost:{mcp_port}"
    metadata_url = f"http://{host}/.well-known/oauth-protected-resource/mcp"
    assert post(mcp_port, host).headers["WWW-Authenticate"] == f'Bearer resource_metadata="{metadata_url}"'
    metadata = metadata_get(mcp_port, host)
    assert metadata.json()["resource"] == f"http://{host}/mcp"
    assert (metadata.json()["authorization_servers"], metadata.json()["scopes_supported"]) == (
        [issuer],
        ["openid", "email"],
    )


@pytest.mark.parametrize("host", ["nobody.localhost", "localhost", "evil.example"])
def test_a_host_that_is_no_workspace_is_421(mcp_port, ws, host):
    ws, _ = ws
    response = post(mcp_port, f"{host}:{mcp_port}", Authorization=f"Bearer {ws.tokens['owner']}")
    assert response.status_code == 421
    assert response.json()["error"]["code"] == "unknown_host"


def test_a_foreign_origin_is_403(mcp_port, ws):
    ws, _ = ws
    host = f"{ws.slug}.localhost:{mcp_port}"
    for origin in ("http://evil.example", f"https://{host}", "null"):
        response = post(mcp_port, host, Authorization=f"Bearer {ws.tokens['owner']}", Origin=origin)
        assert response.status_code == 403, origin
        assert response.json()["error"]["code"] == "origin_refused"


def test_a_browser_client_at_an_allowed_origin_may_call_and_read_the_answers(mcp_port, ws):
    """FOUNDRY_MCP_ALLOWED_ORIGINS (tests/settings.py: https://inspector.test): the CORS preflight
    is answered, and every answer, a refusal too, may be read by that origin."""
    ws, _ = ws
    host = f"{ws.slug}.localhost:{mcp_port}"
    origin = "https://inspector.test"
    asked = "authorization, content-type, mcp-protocol-version"
    preflight = httpx2.request(
        "OPTIONS",
        mcp_url(mcp_port),
        headers={
            "Host": host,
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
        timeout=30,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == asked
    called = post(mcp_port, host, Authorization=f"Bearer {ws.tokens['viewer']}", Origin=origin)
    assert called.status_code == 200 and called.headers["access-control-allow-origin"] == origin
    refused = post(mcp_port, host, Origin=origin)
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin
    assert "WWW-Authenticate" in refused.headers["access-control-expose-headers"]
    foreign = httpx2.request("OPTIONS", mcp_url(mcp_port), headers={"Host": host, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


def test_the_protected_resource_metadata_the_401_names_is_readable_from_a_browser(
    mcp_port, fresh_tenant, django_db_blocker
):
    """The metadata a browser client's 401 sends it to is public: readable from any origin, its
    preflight (an MCP SDK sends MCP-Protocol-Version) answered, so discovery goes on."""
    sso_set(fresh_tenant, django_db_blocker)
    host = f"{fresh_tenant.slug}.localhost:{mcp_port}"
    url = f"http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp"
    headers = {"Host": host, "Origin": "https://inspector.test"}
    preflight = httpx2.request(
        "OPTIONS",
        url,
        headers={
            **headers,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version",
        },
        timeout=30,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == "mcp-protocol-version"
    metadata = httpx2.get(url, headers={**headers, "MCP-Protocol-Version": "2025-06-18"}, timeout=30)
    assert metadata.status_code == 200 and metadata.headers["access-control-allow-origin"] == "*"
    assert metadata.json()["resource"] == f"http://{host}/mcp"


@pytest.mark.anyio
async def test_the_workspaces_own_origin_is_accepted(mcp_port, ws):
    ws, _ = ws
    origin = f"http://{ws.slug}.localhost:{mcp_port}"
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"], Origin=origin) as client:
        assert (await client.list_tools()).tools


@pytest.mark.parametrize(
    "credentials",
    ["revoked", "Bearer af_000000000000_" + "x" * 43, "Bearer", "Basic b3duZXI6cGFzcw=="],
)
def test_a_token_that_is_not_valid_is_401(mcp_port, ws, credentials):
    ws, revoked = ws
    authorization = f"Bearer {revoked}" if credentials == "revoked" else credentials
    response = post(mcp_port, f"{ws.slug}.localhost:{mcp_port}", Authorization=authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_bearer_scheme_is_case_insensitive(mcp_port, ws):
    """RFC 9110 §11.1: `bearer` and `BEARER` name the same scheme."""
    ws, _ = ws
    for scheme in ("bearer", "BEARER"):
        response = post(mcp_port, f"{ws.slug}.localhost:{mcp_port}", Authorization=f"{scheme} {ws.tokens['viewer']}")
        assert response.status_code == 200, response.content


def test_a_revoked_token_is_named_invalid(mcp_port, ws):
    ws, revoked = ws
    response = post(mcp_port, f"{ws.slug}.localhost:{mcp_port}", Authorization=f"Bearer {revoked}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_session_id_alone_is_not_a_credential(mcp_port, ws):
    ws, _ = ws
    host = f"{ws.slug}.localhost:{mcp_port}"
    answered = post(mcp_port, host, Authorization=f"Bearer {ws.tokens['viewer']}")
    assert answered.status_code == 200
    session = answered.headers.get("Mcp-Session-Id") or "0123456789abcdef0123456789abcdef"
    response = post(mcp_port, host, **{"Mcp-Session-Id": session})
    assert response.status_code == 401
