"""The `http` tool does what its manifest and its schema say: a host declared as its A-label
matches an internationalised URL in validation as at run time, a name's other addresses are
tried when the first cannot be reached, and a list the schema offers is sent as a repeated
query parameter (docs/manifests.md)."""

import pytest

from foundry.manifests import validate
from foundry.manifests.validation import url_host
from foundry.runtime.network import FetchError, NetworkPolicy, fetch
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import EXAMPLES, Server, agent, load, reply

LOOPBACK = NetworkPolicy(allow_private=True)
TRIAGE = (EXAMPLES / "agents" / "invoice-triage.yaml").read_text()


@pytest.fixture(autouse=True)
def _fresh_request_state():
    """No database or cache here (as tests/runtime/conftest.py)."""
    yield


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_an_idn_url_validates_against_its_punycode_host_declaration():
    """`hosts` entries are ASCII, so an internationalised host is declared as its A-label, as the
    runtime reads the URL's host: validation reads it so too."""
    url = "https://bücher.example/v1/companies/{id}"
    assert url_host(url.replace("{id}", "1")) == "xn--bcher-kva.example"  # what the runtime matches
    text = TRIAGE.replace("https://registry.example.com/v1/companies/{id}", url).replace(
        "hosts: [registry.example.com]", "hosts: [xn--bcher-kva.example]"
    )
    result = validate(text, "agent.yaml")
    assert result.ok, [str(p) for p in result.problems]


def test_a_name_with_several_addresses_is_reached_on_the_next_one_when_the_first_refuses(server):
    """A name resolving to several addresses (all checked, all allowed) is one service: when the
    first cannot be connected to, the next is asked, as HTTP clients do (RFC 8305)."""
    server.routes["/v1/ping"] = reply(body=b'{"ok": true}')
    dead_first = lambda host, port: ["127.0.0.2", "127.0.0.1"]  # noqa: E731 -- 127.0.0.2: nothing listens
    try:
        result = fetch(
            "GET",
            f"http://svc.example:{server.port}/v1/ping",
            hosts=["svc.example"],
            timeout=5,
            policy=LOOPBACK,
            resolver=dead_first,
        )
    except FetchError as exc:  # pragma: no cover - the failure this test is about
        pytest.fail(f"{exc.code}: {exc.message}")
    assert result.status == 200 and result.body == b'{"ok": true}'


def test_a_get_tools_schema_does_not_offer_an_array_the_call_then_refuses(server):
    """An http tool acting on an entity offers the entity's fields as its arguments: `tags` (a
    list field) as an array, which a GET sends as the parameter repeated."""
    server.routes["/v1/invoices"] = reply(body=b"[]")
    tool = {
        "name": "search_invoices",
        "type": "http",
        "entity": "invoice",
        "description": "Search invoices.",
        "url": server.origin + "/v1/invoices",
        "hosts": ["127.0.0.1"],
    }
    manifest = agent(load(EXAMPLES / "agents" / "invoice-triage.yaml"), tools=[tool], approvals={})
    toolbox = Toolbox(manifest, load(EXAMPLES / "domains" / "finance.yaml"), ToolOptions(network=LOOPBACK))
    search = toolbox.get("search_invoices")
    offered = search.spec.parameters["properties"]["tags"]
    assert offered["type"] == "array"  # what the model is told it may send
    toolbox.run(search, {"tags": ["urgent", "late"]}, timeout=5)
    assert server.requests[-1]["query"] == "tags=urgent&tags=late"
    with pytest.raises(ToolError) as nested:
        toolbox.run(search, {"tags": [["urgent"]]}, timeout=5)
    assert nested.value.code == "tool_argument_invalid"


def test_a_url_whose_host_cannot_be_read_is_refused_at_validation():
    """A tab in the host: urlsplit drops it, httpx cannot read it; every call would fail."""
    text = TRIAGE.replace(
        "https://registry.example.com/v1/companies/{id}", "https://registry.exa\tmple.com/v1/companies/{id}"
    )
    result = validate(text, "agent.yaml")
    assert [p.code for p in result.problems] == ["http_url_invalid"]
