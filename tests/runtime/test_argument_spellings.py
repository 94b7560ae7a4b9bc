"""Arguments a server reads as something the manifest fixed cannot change it (docs/runs.md,
"Approvals" and "HTTP tools and private networks"): a rule's field nested inside a JSON object of
a POST body (Rails' and Rack's params read `{"vendor": {"risk": …}}` as `vendor[risk]`), and the
spellings PHP and Rack read as a query parameter the tool's URL fixes (`scope[]`, ` scope`)."""

import copy
import json

import pytest

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ScriptedProvider
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import agent, call, reply, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _paying_vendors(invoice_triage, server) -> dict:
    """invoice-triage plus `pay_vendor`, a POST http tool on the vendor entity (finance's rule
    `risk = "high" -> deny` applies to its calls)."""
    server.routes["/pay/V-1"] = reply(body=b'{"paid": true}')
    tool = {
        "name": "pay_vendor",
        "type": "http",
        "entity": "vendor",
        "description": "Pay a vendor.",
        "method": "POST",
        "url": server.origin + "/pay/{id}",
        "hosts": ["127.0.0.1"],
    }
    return agent(invoice_triage, tools=[*invoice_triage["spec"]["tools"], tool], approvals={})


def test_the_field_nested_in_a_json_object_does_not_slip_past_a_deny_rule(invoice_triage, finance, server):
    """`{"vendor": {"risk": "high"}}` is refused before the call: the deny rule on `risk` would not
    have seen it, and the service would read it as the field."""
    manifest = _paying_vendors(invoice_triage, server)
    script = [call("pay_vendor", id="V-1", vendor={"risk": "high"}), respond("Paid.")]
    graph = AgentGraph(manifest, finance, provider=ScriptedProvider(script), tools=LOOPBACK)
    result = graph.start("t", "Pay V-1.")
    sent = [json.loads(r["body"]) for r in server.requests]
    assert server.requests == [] and result.steps[1]["status"] != "ok", (
        f"the high-risk vendor was paid: the deny rule never saw the nested field; the service received {sent}"
    )


@pytest.mark.parametrize("name", ["scope[]", " scope"], ids=["php-rack-brackets", "php-leading-space"])
def test_a_spelling_servers_read_as_the_fixed_parameter_cannot_override_it(server, invoice_triage, finance, name):
    """`?scope=readonly&scope[]=admin` reads as scope=['admin'] in PHP, `&+scope=admin` as
    scope=admin: both are refused like `scope` itself."""
    server.routes["/v1/search"] = reply(body=b'{"ok": true}')
    tool = {
        "name": "search",
        "type": "http",
        "description": "Search, read-only.",
        "url": server.origin + "/v1/search?scope=readonly",
        "hosts": ["127.0.0.1"],
    }
    manifest = copy.deepcopy(invoice_triage)
    manifest["spec"]["tools"] = [tool]
    manifest["spec"]["approvals"] = {}
    toolbox = Toolbox(manifest, finance, ToolOptions(network=NetworkPolicy(allow_private=True)))
    try:
        toolbox.run(toolbox.get("search"), {"q": "x", name: "admin"}, timeout=2)
    except ToolError as exc:
        assert exc.code == "tool_argument_invalid", exc
        return
    pytest.fail(f"sent {server.requests[0]['query']!r}: the model's {name!r} overrides the manifest's scope")
