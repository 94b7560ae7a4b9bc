"""`run_test` / `run_tests`: what `forge test` runs — the examples, approvals and expectations."""

import pytest

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.providers import ProviderError
from foundry.runtime.sandbox import SandboxError, TestOutcome, run_test, run_tests
from foundry.runtime.tools import ToolOptions
from tests.runtime.conftest import EXAMPLES, agent, call, load, reply, respond

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))

EXAMPLE_PAIRS = [("invoice-triage", "finance"), ("shipment-tracker", "logistics")]


@pytest.mark.parametrize(("agent_name", "domain_name"), EXAMPLE_PAIRS)
def test_the_examples_tests_pass(agent_name, domain_name):
    manifest = load(EXAMPLES / "agents" / f"{agent_name}.yaml")
    domain = load(EXAMPLES / "domains" / f"{domain_name}.yaml")
    progress = []
    outcomes = run_tests(manifest, domain, on_progress=progress.append)
    assert outcomes == progress
    assert [o.name for o in outcomes] == [t["name"] for t in manifest["spec"]["tests"]]
    for outcome in outcomes:
        assert outcome.passed, outcome.failures
        assert (outcome.status, outcome.failures, outcome.steps) == ("succeeded", [], 3)
        assert outcome.input_tokens > 0 and outcome.output_tokens > 0 and outcome.duration_ms > 0


def test_an_outcome_is_plain_data(invoice_triage, finance):
    outcome = run_test(invoice_triage, finance, invoice_triage["spec"]["tests"][0])
    data = outcome.as_dict()
    assert data["name"] == "small-invoice-is-approved"
    assert data["tools_called"] == ["find_invoices"]
    assert data["output"] == "INV-1001 (420.00 EUR, vendor low risk) can be approved."
    assert set(data) == {
        "name", "passed", "status", "output", "tools_called", "approvals_requested", "failures", "steps",
        "input_tokens", "output_tokens", "duration_ms", "reason",
    }  # fmt: skip


def _registry_test(**extra) -> dict:
    return {
        "name": "checks-registry",
        "input": "Check vendor V-1.",
        "script": [call("vendor_registry", id="V-1"), respond("Checked.")],
        **extra,
    }


@pytest.fixture
def local_registry(invoice_triage, server):
    """invoice-triage with its registry tool pointed at a local server (reachable with allow_private)."""
    server.routes["/v1/companies/V-1"] = reply(body=b'{"name": "Vendor One"}')
    tools = [dict(t) for t in invoice_triage["spec"]["tools"]]
    tools[2].update(url=server.origin + "/v1/companies/{id}", hosts=["127.0.0.1"])
    return agent(invoice_triage, tools=tools)


def test_an_approved_call_goes_ahead(local_registry, finance, server):
    test = _registry_test(expect={"tools_called": ["vendor_registry"], "approvals_requested": ["vendor_registry"]})
    outcome = run_test(local_registry, finance, test, tools=LOOPBACK)
    assert outcome.passed, outcome.failures
    assert (outcome.approvals_requested, outcome.tools_called) == (["vendor_registry"], ["vendor_registry"])
    assert [r["path"] for r in server.requests] == ["/v1/companies/V-1"]


def test_a_rejected_call_does_not_go_ahead(local_registry, finance, server):
    test = _registry_test(approve=False, expect={"approvals_requested": ["vendor_registry"], "tools_called": []})
    steps = []
    outcome = run_test(local_registry, finance, test, on_step=steps.append, tools=LOOPBACK)
    assert outcome.passed, outcome.failures
    assert (outcome.status, outcome.tools_called, outcome.output) == ("succeeded", [], "Checked.")
    assert steps[1]["status"] == "rejected"
    assert server.requests == []


def test_the_sandbox_refuses_private_addresses_by_default(local_registry, finance, server):
    outcome = run_test(local_registry, finance, _registry_test(script=[call("vendor_registry", id="V-1")]))
    assert "Error (http_address_refused)" in outcome.output
    assert server.requests == []


def test_a_test_may_expect_the_run_to_wait_for_approval(invoice_triage, finance):
    # Nothing is answered, so the (public, unreachable) registry is never called.
    outcome = run_test(invoice_triage, finance, _registry_test(expect={"status": "waiting_approval"}))
    assert (outcome.passed, outcome.status, outcome.steps) == (True, "waiting_approval", 1)
    assert outcome.approvals_requested == ["vendor_registry"]


def test_a_rule_that_requires_approval_is_answered_like_any_approval(invoice_triage, finance):
    test = {
        "name": "big",
        "input": "Look up the big one.",
        "script": [call("find_invoices", amount=50000), respond("Found.")],
        "approve": False,
        "expect": {"approvals_requested": ["find_invoices"], "tools_called": []},
    }
    outcome = run_test(invoice_triage, finance, test)
    assert outcome.passed, outcome.failures


def test_failed_expectations_are_reported_one_by_one(invoice_triage, finance):
    test = {
        "name": "wrong",
        "input": "Triage INV-1.",
        "script": [call("find_invoices", question="INV-1"), respond("It can be approved.")],
        "expect": {
            "status": "failed",
            "output_contains": ["approved", "rejected"],
            "tools_called": ["find_vendors"],
            "approvals_requested": ["vendor_registry"],
        },
    }
    outcome = run_test(invoice_triage, finance, test)
    assert outcome.passed is False
    assert outcome.failures == [
        "status: expected 'failed', got 'succeeded'.",
        "output_contains: 'rejected' is not in the output 'It can be approved.'.",
        "tools_called: 'find_vendors' was not called (got find_invoices).",
        "approvals_requested: 'vendor_registry' had no approval requested (none).",
    ]


def test_a_limit_failure_names_its_reason(invoice_triage, finance):
    manifest = agent(invoice_triage, limits={"max_steps": 2})
    test = {"name": "loops", "input": "x", "script": [call("find_invoices")] * 3}
    outcome = run_test(manifest, finance, test)
    assert (outcome.passed, outcome.status, outcome.steps) == (False, "failed", 2)
    assert outcome.reason == "max_steps: The run reached its limit of 2 steps."
    assert outcome.failures == [
        "status: expected 'succeeded', got 'failed' (max_steps: The run reached its limit of 2 steps.)."
    ]


def test_expecting_no_tools_fails_when_one_was_called(invoice_triage, finance):
    test = {"name": "quiet", "input": "x", "script": [call("find_invoices")], "expect": {"tools_called": []}}
    assert run_test(invoice_triage, finance, test).failures == ["tools_called: expected none, got find_invoices."]


def test_without_a_script_the_documented_fallback_answers(invoice_triage, finance):
    outcome = run_test(invoice_triage, finance, {"name": "bare", "input": "Hello?"})
    assert (outcome.passed, outcome.output) == (True, "No scripted answer for: Hello?")


def test_a_subagent_call_in_the_sandbox_is_a_clear_tool_error(invoice_triage, finance):
    tools = [{"name": "ask_ap", "type": "subagent", "description": "Ask AP.", "agent": "ap-desk"}]
    manifest = agent(invoice_triage, tools=tools, approvals={})
    outcome = run_test(manifest, finance, {"name": "sub", "input": "x", "script": [call("ask_ap", input="hi")]})
    assert outcome.output.startswith("ask_ap returned: Error (subagent_unavailable): Sub-agents need a Foundry server")


def test_run_tests_can_select_tests_by_name(invoice_triage, finance):
    tests = [{"name": n, "input": n, "script": [respond(n)]} for n in ("one", "two", "three")]
    manifest = agent(invoice_triage, tests=tests)
    assert [o.name for o in run_tests(manifest, finance, names=["three", "one"])] == ["one", "three"]
    with pytest.raises(SandboxError) as info:
        run_tests(manifest, finance, names=["four"])
    assert info.value.code == "test_unknown"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_real_provider_without_credentials_is_an_error_not_a_failed_test(invoice_triage, finance, provider):
    with pytest.raises(ProviderError) as info:
        run_tests(invoice_triage, finance, provider=provider)
    assert info.value.code == "provider_credentials_missing"


def test_an_unknown_provider_is_an_error_not_a_failed_test(invoice_triage, finance):
    with pytest.raises(ProviderError) as info:
        run_tests(invoice_triage, finance, provider="hal-9000")
    assert info.value.code == "provider_unknown"


def test_it_is_not_collected_as_a_test_class():
    assert TestOutcome.__test__ is False
