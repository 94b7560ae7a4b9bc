"""The `n` of `foundry://agents/{name}/versions/{n}` (and of `dis/…`) is ASCII digits only, as the
API's route (`<int:number>`): no sign, spaces, underscores or digits of other scripts naming
version 1, and a malformed one quoted as given."""

import pytest
from mcp import MCPError

from tests.mcp.conftest import mcp_client
from tests.runs.conftest import FINANCE, TRIAGE

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "n",
    ["+1", " 1", "1 ", "0_1", "\u0661", "%2B1", "%201"],
    ids=[
        "sign",
        "leading_space",
        "trailing_space",
        "underscore",
        "arabic_indic_digit",
        "encoded_sign",
        "encoded_space",
    ],
)
@pytest.mark.parametrize("kind, name", [("agents", "invoice-triage"), ("dis", "finance")])
async def test_a_version_that_is_not_written_in_ascii_digits_names_nothing(mcp_port, ws, kind, name, n):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(f"foundry://{kind}/{name}/versions/{n}")
    assert (refused.value.code, refused.value.data["code"]) == (-32602, "version_not_found")


async def test_a_version_that_is_no_number_is_named_as_given(mcp_port, ws):
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource("foundry://agents/invoice-triage/versions/1.0")
    assert refused.value.data["code"] == "version_not_found"
    assert "-1" not in refused.value.message and "1.0" in refused.value.message, refused.value.message


async def test_the_version_in_digits_is_read(mcp_port, ws):
    """The control."""
    async with mcp_client(mcp_port, ws.slug, ws.tokens["viewer"]) as client:
        agent = await client.read_resource("foundry://agents/invoice-triage/versions/1")
        domain = await client.read_resource("foundry://dis/finance/versions/1")
    assert (agent.contents[0].text, domain.contents[0].text) == (TRIAGE, FINANCE)


# A refusal's data.uri is the URI asked for (docs/mcp.md, Resources/Errors): the SDK hands the
# template's values percent-decoded, and the URI is built from them encoded again — it named
# another URI before (`%2F` as an extra path segment, `%25` as a bare `%`).


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
