"""A DIS rule comparing a field with a text sees a value that a lenient backend reads as that text
— another case, spaces at its ends, fullwidth letters (MySQL's and SQL Server's default
case-insensitive, PAD SPACE collations; NFKC-normalising services) — as that text
(foundry/runtime/rules.py `_spelt`), as it already read argument *names* (`_fold`). Compared
exactly, `deny` and `require_approval` rules were slipped past by the value's spelling. Found by a
review; then the same for a comparison written as the shorthand `country = ("IR" OR "KP")` or with
an unquoted dotted value, and a value matching a rule's wildcard but for its case is refused."""

import copy
import json

import pytest

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ScriptedProvider
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import agent, call, pay_vendor, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _pay_vendor(invoice_triage: dict, domain: dict, server, arguments: dict):
    """A run that calls `pay_vendor` (an http POST to `server`) once with `arguments`, under `domain`'s rules."""
    manifest = agent(invoice_triage, tools=[pay_vendor(server)], approvals={})
    provider = ScriptedProvider([call("pay_vendor", id="V-1", **arguments), respond("Done.")])
    return AgentGraph(manifest, domain, provider=provider, tools=LOOPBACK).start("t", "Pay V-1.")


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
    # As the rule spells it: denied, nothing sent.
    assert _pay_vendor(invoice_triage, domain, server, {"country": "IR"}).steps[1]["status"] == "denied"
    assert server.requests == []

    result = _pay_vendor(invoice_triage, domain, server, {"country": country})
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


def _denying(finance: dict, when: str) -> dict:
    domain = copy.deepcopy(finance)
    domain["spec"]["rules"].append(
        {"name": "blocked-vendor", "entity": "vendor", "when": when, "then": "deny", "message": "Not paid."}
    )
    return domain


# The same whichever valid form the rule's comparison takes: the shorthand the compiler distributes,
# an unquoted value with a dot; and a wildcard's match but for the case is refused.


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
    assert _pay_vendor(invoice_triage, _denying(finance, when), server, exact).steps[1]["status"] == "denied"
    assert server.requests == []

    result = _pay_vendor(invoice_triage, _denying(finance, when), server, other)
    sent = [json.loads(r["body"]) for r in server.requests]
    assert result.steps[1]["status"] == "denied", f"paid past the deny rule {when!r}; the service received {sent}"
    assert sent == []


def test_a_value_matching_a_deny_wildcard_but_for_its_case_is_refused(invoice_triage, finance, server):
    """`name = "Sanctioned*"` denies "Sanctioned Ltd"; "sanctioned ltd", which a case-insensitive
    server's LIKE 'Sanctioned%' matches, is refused as an argument: the service gets neither."""
    when = 'name = "Sanctioned*"'
    assert (
        _pay_vendor(invoice_triage, _denying(finance, when), server, {"name": "Sanctioned Ltd"}).steps[1]["status"]
        == "denied"
    )
    result = _pay_vendor(invoice_triage, _denying(finance, when), server, {"name": "sanctioned ltd"})
    step = result.steps[1]
    assert step["status"] == "error" and "spell it as the rule does" in step["summary"], step
    assert server.requests == []
    allowed = _pay_vendor(
        invoice_triage, _denying(finance, when), server, {"name": "Acme Ltd"}
    )  # matches it in no spelling
    assert allowed.steps[1]["status"] == "ok", allowed.steps[1]
