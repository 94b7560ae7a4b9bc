"""A DIS rule comparing a field with a text sees a value that a lenient backend reads as that text
— another case, spaces at its ends, fullwidth letters (MySQL's and SQL Server's default
case-insensitive, PAD SPACE collations; NFKC-normalising services) — as that text
(foundry/runtime/rules.py `_spelt`), as it already read argument *names* (`_fold`). Compared
exactly, `deny` and `require_approval` rules were slipped past by the value's spelling. Found by a
review."""

import copy
import json

import pytest

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ScriptedProvider
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import agent, call, reply, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _sanctions(finance: dict) -> dict:
    domain = copy.deepcopy(finance)
    domain["spec"]["rules"].append(
        {
            "name": "no-payment-to-sanctioned-country",
            "entity": "vendor",
            "when": 'country = "IR"',
            "then": "deny",
            "message": "Vendors in sanctioned countries are not paid.",
        }
    )
    return domain


@pytest.mark.parametrize("country", ["ir", "Ir", "IR ", "\uff29\uff32"])  # last: fullwidth
def test_a_deny_rule_on_a_string_field_is_not_evaded_by_the_values_case_or_width(
    invoice_triage, finance, server, country
):
    """`country = "IR"` denies the vendor payment with country "ir", "Ir", "IR " or fullwidth "IR"
    as with "IR": nothing reaches the service."""
    domain = _sanctions(finance)
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

    # As the rule spells it: denied, nothing sent.
    graph = AgentGraph(
        manifest,
        domain,
        provider=ScriptedProvider([call("pay_vendor", id="V-1", country="IR"), respond("No.")]),
        tools=LOOPBACK,
    )
    assert graph.start("t1", "Pay V-1.").steps[1]["status"] == "denied"
    assert server.requests == []

    graph = AgentGraph(
        manifest,
        domain,
        provider=ScriptedProvider([call("pay_vendor", id="V-1", country=country), respond("Paid.")]),
        tools=LOOPBACK,
    )
    result = graph.start("t2", "Pay V-1.")
    sent = [json.loads(r["body"]) for r in server.requests]
    assert result.steps[1]["status"] == "denied", f"paid past the deny rule; the service received {sent}"
    assert sent == []


def test_a_require_approval_rule_on_a_list_of_strings_is_not_evaded_by_case(invoice_triage, finance):
    """`tags:urgent` (require_approval) asks for approval for ["URGENT"] and ["urgent "] too."""
    domain = copy.deepcopy(finance)
    domain["spec"]["rules"].append(
        {"name": "urgent-needs-approval", "entity": "invoice", "when": "tags:urgent", "then": "require_approval"}
    )
    from foundry.runtime.tools import Toolbox

    box = Toolbox(invoice_triage, domain)
    tool = box.get("find_invoices")
    assert box.review(tool, {"tags": ["urgent"]})[1]
    for tags in (["URGENT"], ["urgent "]):
        assert box.review(tool, {"tags": tags})[1], f"{tags} needs no approval"
