"""Argument names PHP's query parser reads as a DIS field or a fixed query parameter: `.` and an
unclosed `[` become `_`, and a name ends at a NUL (main/php_variables.c). Refused, or seen by the
rules as the field (docs/runs.md: "any spelling a server may read as the field")."""

import copy

import pytest

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.tools import Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import reply

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _domain(finance: dict) -> dict:
    """finance plus an invoice field with an underscore (`net_total`) and a deny rule on it."""
    domain = copy.deepcopy(finance)
    spec = domain["spec"]
    spec["entities"]["invoice"]["fields"]["net_total"] = {"type": "decimal"}
    spec["rules"].append(
        {
            "name": "no-large-net-payment",
            "entity": "invoice",
            "when": "net_total > 10000",
            "then": "deny",
            "message": "Net totals above 10,000 are paid by treasury only.",
        }
    )
    return domain


def _toolbox(invoice_triage: dict, domain: dict, url: str) -> Toolbox:
    manifest = copy.deepcopy(invoice_triage)
    manifest["spec"]["tools"] = [
        {
            "name": "pay",
            "type": "http",
            "entity": "invoice",
            "description": "Pay an invoice (GET: arguments travel in the query string).",
            "url": url,
            "hosts": ["127.0.0.1"],
        }
    ]
    manifest["spec"]["approvals"] = {}
    return Toolbox(manifest, domain, LOOPBACK)


def test_the_deny_rule_fires_for_the_field_as_declared(invoice_triage, finance, server):
    """Control: the rule denies `net_total=25000` spelt as declared."""
    toolbox = _toolbox(invoice_triage, _domain(finance), server.origin + "/pay")
    verdict, _ = toolbox.review(toolbox.get("pay"), {"id": "INV-7", "net_total": 25000})
    assert [r.name for r in verdict.denied] == ["no-large-net-payment"]


@pytest.mark.parametrize(
    "name",
    ["net.total", "net[total", "net_total\x00x"],
    ids=["dot-for-underscore", "unclosed-bracket", "nul-truncated"],
)
def test_a_name_php_reads_as_a_rule_field_is_refused(invoice_triage, finance, server, name):
    server.routes["/pay"] = reply(body=b'{"paid": true}')
    toolbox = _toolbox(invoice_triage, _domain(finance), server.origin + "/pay")
    tool = toolbox.get("pay")
    arguments = {"id": "INV-7", name: 25000}
    try:
        verdict, _ = toolbox.review(tool, arguments)
    except ToolError as exc:
        assert exc.code == "tool_argument_invalid"
        return
    assert verdict.denied, f"neither refused nor denied: {name!r} would be sent, and PHP reads it as net_total"


def test_a_nul_truncated_name_does_not_slip_past_the_require_approval_rule_on_amount(invoice_triage, finance, server):
    """The finance example's own rule (`amount > 10000 -> require_approval`): `amount\\0x` is
    PHP's `amount`."""
    server.routes["/pay"] = reply(body=b'{"paid": true}')
    toolbox = _toolbox(invoice_triage, finance, server.origin + "/pay")
    tool = toolbox.get("pay")
    arguments = {"id": "INV-7", "amount\x00x": 25000}
    try:
        _verdict, reasons = toolbox.review(tool, arguments)
    except ToolError as exc:
        assert exc.code == "tool_argument_invalid"
        return
    toolbox.run(tool, arguments, timeout=2)
    assert reasons, f"sent without approval: the service received ?{server.requests[0]['query']}"


@pytest.mark.parametrize("name", ["access.scope", "access[scope", "access_scope\x00x"], ids=["dot", "bracket", "nul"])
def test_a_query_parameter_fixed_by_the_url_cannot_be_overridden_under_a_php_spelling(
    invoice_triage, finance, server, name
):
    """tools.py: the declared URL's query parameters "are the manifest's, not the model's to
    change, under any spelling a server may read as theirs"; PHP reads each of these as
    `access_scope` (the last value of a name wins in $_GET)."""
    server.routes["/search"] = reply(body=b'{"ok": true}')
    toolbox = _toolbox(invoice_triage, finance, server.origin + "/search?access_scope=readonly")
    with pytest.raises(ToolError) as refused:
        toolbox.run(toolbox.get("pay"), {"q": "x", name: "admin"}, timeout=2)
    assert refused.value.code == "tool_argument_invalid", server.requests
    assert server.requests == []
