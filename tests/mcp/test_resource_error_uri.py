"""A resource refusal's `data.uri` is the URI asked for (docs/mcp.md, Resources/Errors): the SDK
hands the template's values percent-decoded, and the URI is built from them encoded again — it
named another URI before (`%2F` as an extra path segment, `%25` as a bare `%`)."""

import pytest
from mcp import MCPError

from tests.mcp.conftest import mcp_client, workspace_make
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ws(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return workspace_make(FINANCE, TRIAGE)


@pytest.mark.parametrize(
    "uri",
    ["foundry://agents/invoice-triage%2Fx/versions/1", "foundry://agents/a%25b/versions/1"],
    ids=["encoded_slash", "encoded_percent"],
)
async def test_a_refused_resource_names_the_uri_that_was_asked_for(mcp_port, ws, uri):
    """data.uri is the requested URI, as the SDK's own 'Unknown resource' errors name it."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
    assert refused.value.data["code"] == "agent_not_found"
    assert refused.value.data["uri"] == uri
