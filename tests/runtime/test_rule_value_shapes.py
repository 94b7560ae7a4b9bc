"""DIS rules see a value spelt another way by a lenient server (another case, spaces at its ends,
fullwidth letters) as the text they compare (docs/runs.md, "Approvals"), whichever valid form the
rule's comparison takes: `country = ("IR" OR "KP")` (the shorthand the compiler distributes),
`name = acme.example` (an unquoted value with a dot). A value such a server reads as matching a
rule's wildcard (`sanctioned ltd` for `name = "Sanctioned*"`) that does not match it as written is
refused. Either way nothing reaches the service."""

import copy
import json

import pytest

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ScriptedProvider
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import agent, call, reply, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _run(invoice_triage, finance, server, when, arguments):
    domain = copy.deepcopy(finance)
    domain["spec"]["rules"].append(
        {"name": "blocked-vendor", "entity": "vendor", "when": when, "then": "deny", "message": "Not paid."}
    )
    server.routes["/pay-vendor"] = reply(body=b'{"paid": true}')
    tool = {
        "name": "pay_vendor",
        "type": "http",
        "entity": "vendor",
        "description": "Pay a vendor.",
        "method": "POST",
        "url": server.origin + "/pay-vendor",
        "hosts": ["127.0.0.1"],
    }
    manifest = agent(invoice_triage, tools=[tool], approvals={})
    graph = AgentGraph(
        manifest,
        domain,
        provider=ScriptedProvider([call("pay_vendor", id="V-1", **arguments), respond("Done.")]),
        tools=LOOPBACK,
    )
    return graph.start("t", "Pay V-1.")


@pytest.mark.parametrize(
    "when, exact, other",
    [
        ('country = ("IR" OR "KP")', {"country": "IR"}, {"country": "ir"}),
        ('country = ("IR" OR "KP")', {"country": "KP"}, {"country": "\uff2b\uff30"}),  # fullwidth KP
        ("name = acme.example", {"name": "acme.example"}, {"name": "ACME.example"}),
    ],
    ids=["composite-case", "composite-fullwidth", "dotted-unquoted-value"],
)
def test_a_deny_rule_in_another_valid_form_is_not_evaded_by_the_values_spelling(
    invoice_triage, finance, server, when, exact, other
):
    """The rule denies the value as it spells it, and spelt in another case or width too."""
    assert _run(invoice_triage, finance, server, when, exact).steps[1]["status"] == "denied"
    assert server.requests == []

    result = _run(invoice_triage, finance, server, when, other)
    sent = [json.loads(r["body"]) for r in server.requests]
    assert result.steps[1]["status"] == "denied", f"paid past the deny rule {when!r}; the service received {sent}"
    assert sent == []


def test_a_value_matching_a_deny_wildcard_but_for_its_case_is_refused(invoice_triage, finance, server):
    """`name = "Sanctioned*"` denies "Sanctioned Ltd"; "sanctioned ltd", which a case-insensitive
    server's LIKE 'Sanctioned%' matches, is refused as an argument: the service gets neither."""
    when = 'name = "Sanctioned*"'
    assert _run(invoice_triage, finance, server, when, {"name": "Sanctioned Ltd"}).steps[1]["status"] == "denied"
    result = _run(invoice_triage, finance, server, when, {"name": "sanctioned ltd"})
    step = result.steps[1]
    assert step["status"] == "error" and "spell it as the rule does" in step["summary"], step
    assert server.requests == []
    allowed = _run(invoice_triage, finance, server, when, {"name": "Acme Ltd"})  # matches it in no spelling
    assert allowed.steps[1]["status"] == "ok", allowed.steps[1]
