r"""DIS rules on tool calls: an argument a lenient server reads as a field does not slip past the
field's `deny` / `require_approval` rule — also when it differs from the field's name only by
Unicode look-alikes: a dotless i (U+0131) or a dotted capital I (U+0130), which case-insensitive
comparisons read as i; a no-break space (which `strip()`/`trim()` drop); fullwidth letters (NFKC
makes them ASCII); or nested in a JSON object of a POST body, which Rails' and Rack's params read
as its bracket spelling (docs/runs.md, "Approvals")."""

import json

import pytest

from foundry.runtime.graph import AgentGraph
from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ScriptedProvider
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import agent, call, finance, invoice_triage, pay_vendor, respond, server  # noqa: F401

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _paying_vendors(invoice_triage, server) -> dict:  # noqa: F811
    """invoice-triage plus `pay_vendor`, an http tool on the vendor entity (so the finance rule
    `risk = "high" -> deny` applies to its calls)."""
    tool = pay_vendor(server, "/pay/{id}")
    return agent(invoice_triage, tools=[*invoice_triage["spec"]["tools"], tool], approvals={})


@pytest.mark.parametrize(
    "arguments",
    [
        {"r\u0131sk": "high"},
        {"r\u0130sk": "high"},
        {"risk\u00a0": "high"},
        {"\uff52\uff49\uff53\uff4b": "high"},
        {"vendor": {"risk": "high"}},
    ],
    ids=["dotless-i", "dotted-capital-i", "no-break-space", "fullwidth", "nested-in-an-object"],
)
def test_a_look_alike_or_nested_field_does_not_slip_past_a_deny_rule(invoice_triage, finance, server, arguments):  # noqa: F811
    """The call is refused before it is made: the deny rule on `risk` would not have seen the
    argument, and the service would read it as the field."""
    manifest = _paying_vendors(invoice_triage, server)
    script = [call("pay_vendor", id="V-1", **arguments), respond("Paid.")]
    graph = AgentGraph(manifest, finance, provider=ScriptedProvider(script), tools=LOOPBACK)
    result = graph.start("t", "Pay V-1.")
    sent = [json.loads(r["body"]) for r in server.requests]
    assert server.requests == [] and result.steps[1]["status"] != "ok", (
        f"the high-risk vendor was paid: the deny rule never saw {arguments!r}; the service received {sent}"
    )


def test_a_nested_object_of_another_thing_with_a_name_and_country_is_not_refused(invoice_triage, finance, server):  # noqa: F811
    """Only the fields a rule compares are looked for inside objects: a payee bank's own `name` and
    `country` in a payment body are no vendor fields a rule reads, and the call goes through."""
    manifest = _paying_vendors(invoice_triage, server)
    bank = {"name": "Deutsche Bank", "country": "DE", "iban": "DE89370400440532013000"}
    script = [call("pay_vendor", id="V-1", risk="low", bank=bank), respond("Paid.")]
    graph = AgentGraph(manifest, finance, provider=ScriptedProvider(script), tools=LOOPBACK)
    result = graph.start("t", "Pay V-1.")
    sent = [json.loads(r["body"]) for r in server.requests]
    assert result.steps[1]["status"] == "ok" and len(sent) == 1, (
        f"a low-risk vendor's payment with its bank's name was refused: {result.steps[1].get('error')!r}, "
        f"{result.steps[1].get('summary')!r}"
    )
