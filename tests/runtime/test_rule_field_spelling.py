"""DIS business rules on tool calls see every argument a server could read as a field: one
spelt like a field but for case, spaces, hyphens or underscores is refused."""

import json

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ScriptedProvider
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import agent, call, reply, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _paying(invoice_triage, server) -> dict:
    """invoice-triage plus `pay_invoice`, an http tool on the invoice entity (so the finance
    rule `amount > 10000 -> require_approval` applies to its calls); approvals.tools is empty."""
    server.routes["/pay/INV-7"] = reply(body=b'{"paid": true}')
    tool = {
        "name": "pay_invoice",
        "type": "http",
        "entity": "invoice",
        "description": "Pay an invoice.",
        "method": "POST",
        "url": server.origin + "/pay/{id}",
        "hosts": ["127.0.0.1"],
    }
    return agent(invoice_triage, tools=[*invoice_triage["spec"]["tools"], tool], approvals={})


def test_a_field_name_in_another_case_does_not_slip_past_a_require_approval_rule(invoice_triage, finance, server):
    """docs/runs.md: "a call matching a DIS rule with `then: require_approval` interrupts the
    graph before the call"; rules.py: "Arguments that are not fields of E are not part of the
    record the rules see"."""
    manifest = _paying(invoice_triage, server)

    # The field as declared: the rule asks for approval, nothing is sent.
    graph = AgentGraph(
        manifest, finance, provider=ScriptedProvider([call("pay_invoice", id="INV-7", amount=25000)]), tools=LOOPBACK
    )
    assert graph.start("t1", "Pay INV-7.").status == "waiting_approval"
    assert server.requests == []

    # The same payment with the field name capitalised.
    script = [call("pay_invoice", id="INV-7", Amount=25000), respond("Paid.")]
    graph = AgentGraph(manifest, finance, provider=ScriptedProvider(script), tools=LOOPBACK)
    result = graph.start("t2", "Pay INV-7.")
    sent = [json.loads(r["body"]) for r in server.requests]
    assert result.status == "waiting_approval" or result.steps[1]["status"] != "ok", (
        f"paid without approval; the service received {sent}"
    )
