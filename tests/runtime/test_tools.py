"""The manifest's tools as they run: dis_query from the DIS, http through the network policy, subagent."""

import json
import time

import pytest

from foundry.runtime.network import NetworkPolicy
from foundry.runtime.tools import MAX_QUESTION_CHARS, Toolbox, ToolError, ToolOptions
from tests.runtime.conftest import agent, reply

LOOPBACK = ToolOptions(network=NetworkPolicy(allow_private=True))


def _error(toolbox: Toolbox, name: str, arguments: dict, code: str) -> ToolError:
    with pytest.raises(ToolError) as info:
        toolbox.run(toolbox.get(name), arguments, timeout=5)
    assert info.value.code == code, info.value.message
    return info.value


def test_dis_query_answers_with_the_entity_its_relationships_rules_and_matching_glossary(invoice_triage, finance):
    toolbox = Toolbox(invoice_triage, finance)
    answer = json.loads(
        toolbox.run(toolbox.get("find_invoices"), {"question": "Is this an AP invoice or not?"}, timeout=5)
    )
    assert answer["domain"] == {"name": "finance", "version": 1}
    assert answer["entity"] == "invoice" and answer["key"] == "id"
    assert answer["fields"]["amount"] == {"type": "decimal", "required": True}
    assert [r["name"] for r in answer["relationships"]] == ["billed_by", "settles"]
    assert answer["rules"] == [
        {
            "name": "large-invoice-needs-approval",
            "when": "amount > 10000",
            "then": "require_approval",
            "message": "Invoices above 10,000 need a human approver.",
        }
    ]
    assert list(answer["glossary"]) == ["AP"]  # "three-way match" is not in the question
    assert "no data records" in answer["note"]


def test_dis_query_glossary_matches_whole_words_only(invoice_triage, finance):
    toolbox = Toolbox(invoice_triage, finance)
    answer = json.loads(toolbox.run(toolbox.get("find_vendors"), {"question": "apple"}, timeout=5))
    assert answer["glossary"] == {}
    assert [r["name"] for r in answer["rules"]] == ["no-payment-to-high-risk-vendor"]


def _with_glossary(finance: dict, glossary: dict) -> dict:
    return {**finance, "spec": {**finance["spec"], "glossary": glossary}}


@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("what is NET 30?", "net 30"),  # ASCII: any case
        ("paid in \u212aroner", "kroner"),  # the Kelvin sign is a K to any-case matching
        ("une facture DÉJÀ payée", "déjà"),
        ("\u017fettled invoices", "settled"),  # a long s is an s
    ],
)
def test_dis_query_glossary_matches_in_any_case(invoice_triage, finance, question, term):
    glossary = {term: "the entry", "kron": "a part of a word only", "ne": "not a word here"}
    toolbox = Toolbox(invoice_triage, _with_glossary(finance, glossary))
    answer = json.loads(toolbox.run(toolbox.get("find_invoices"), {"question": question}, timeout=5))
    assert answer["glossary"] == {term: "the entry"}


def test_dis_query_question_is_bounded(invoice_triage, finance):
    toolbox = Toolbox(invoice_triage, finance)
    error = _error(toolbox, "find_invoices", {"question": "a" * (MAX_QUESTION_CHARS + 1)}, "tool_argument_invalid")
    assert "question" in error.message
    answer = json.loads(toolbox.run(toolbox.get("find_invoices"), {"question": "AP " * 600}, timeout=5))
    assert list(answer["glossary"]) == ["AP"]


def test_dis_query_glossary_of_thousands_of_terms_keeps_to_the_time_the_run_has_left(invoice_triage, finance):
    """Every term was a regular expression run over the whole question (compiled again past
    Python's cache of 512): 4,000 terms and a long question held a worker for seconds, minutes
    with a longer one, whatever time the run had left."""
    glossary = {f"{'a' * 180}{n:05d}": "t" for n in range(4000)}
    toolbox = Toolbox(invoice_triage, _with_glossary(finance, glossary))
    tool = toolbox.get("find_invoices")
    started = time.monotonic()
    answer = json.loads(toolbox.run(tool, {"question": "a" * MAX_QUESTION_CHARS}, timeout=5))
    assert answer["glossary"] == {}
    assert time.monotonic() - started < 1.0
    # Non-ASCII, each term is matched as a word at once: the lookup stops when the time is up.
    with pytest.raises(ToolError) as info:
        toolbox.run(tool, {"question": "\u00e9" * MAX_QUESTION_CHARS}, timeout=0)
    assert info.value.code == "tool_timeout"


def test_dis_query_checks_its_filter_against_the_entity(invoice_triage, finance):
    toolbox = Toolbox(invoice_triage, finance)
    ok = json.loads(toolbox.run(toolbox.get("find_invoices"), {"filter": 'id = "INV-1001"'}, timeout=5))
    assert ok["filter"] == 'id = "INV-1001"'
    error = _error(toolbox, "find_invoices", {"filter": "colour = red"}, "dis_filter_invalid")
    assert "position 0" in error.message and "colour" in error.message


def test_dis_query_refuses_unknown_and_mistyped_arguments(invoice_triage, finance):
    toolbox = Toolbox(invoice_triage, finance)
    assert "sql" in _error(toolbox, "find_invoices", {"sql": "drop"}, "tool_argument_unknown").message
    _error(toolbox, "find_invoices", {"question": 3}, "tool_argument_invalid")


def test_the_http_tool_fills_its_url_template_and_sends_the_rest_as_query(invoice_triage, finance, server):
    server.routes["/v1/companies/a%20b%2Bc%3F"] = reply(body=b'{"name": "ACME"}')
    tools = [
        {
            "name": "registry",
            "type": "http",
            "description": "Registry.",
            "url": server.origin + "/v1/companies/{id}",
            "hosts": ["127.0.0.1"],
        }
    ]
    toolbox = Toolbox(agent(invoice_triage, tools=tools, approvals={}), finance, LOOPBACK)
    assert toolbox.get("registry").spec.parameters["required"] == ["id"]
    result = json.loads(toolbox.run(toolbox.get("registry"), {"id": "a b+c?", "lang": "en"}, timeout=5))
    assert result == {
        "status": 200,
        "url": server.origin + "/v1/companies/a%20b%2Bc%3F?lang=en",
        "content_type": "application/json",
        "body": {"name": "ACME"},
    }
    assert server.requests[0]["query"] == "lang=en"


def test_the_http_tool_adds_the_arguments_after_the_urls_own_query_as_written(invoice_triage, finance, server):
    """The query written in the tool's URL is the manifest's: it goes out byte for byte (a legacy
    Latin-1 escape, a `;`, a bare flag), the model's arguments after it."""
    server.routes["/v1/weather"] = reply(body=b"{}")
    tool = {"name": "weather", "type": "http", "description": "Weather.", "hosts": ["127.0.0.1"]}
    tool["url"] = server.origin + "/v1/weather?city=M%FCnchen;flag"
    toolbox = Toolbox(agent(invoice_triage, tools=[tool], approvals={}), finance, LOOPBACK)
    toolbox.run(toolbox.get("weather"), {"units": "metric", "q": "a b&c"}, timeout=5)
    assert [r["query"] for r in server.requests] == ["city=M%FCnchen;flag&units=metric&q=a+b%26c"]


def test_arguments_making_the_query_too_long_are_the_tools_error(invoice_triage, finance, server):
    tool = {"name": "registry", "type": "http", "description": "Registry.", "hosts": ["127.0.0.1"]}
    tool["url"] = server.origin + "/v1/companies"
    toolbox = Toolbox(agent(invoice_triage, tools=[tool], approvals={}), finance, LOOPBACK)
    _error(toolbox, "registry", {"note": "x" * 70_000}, "http_url_invalid")
    assert server.requests == []


def test_the_http_tool_posts_the_other_arguments_as_json(invoice_triage, finance, server):
    server.routes["/pay"] = reply(201, body=b"queued", content_type="text/plain")
    tools = [
        {
            "name": "pay",
            "type": "http",
            "description": "Pay.",
            "method": "POST",
            "url": server.origin + "/pay",
            "hosts": ["127.0.0.1"],
        }
    ]
    toolbox = Toolbox(agent(invoice_triage, tools=tools, approvals={}), finance, LOOPBACK)
    result = json.loads(toolbox.run(toolbox.get("pay"), {"invoice": "INV-1", "amount": 10}, timeout=5))
    assert (result["status"], result["body"]) == (201, "queued")
    assert json.loads(server.requests[0]["body"]) == {"invoice": "INV-1", "amount": 10}


def test_the_http_tool_reports_missing_arguments_errors_and_refusals(invoice_triage, finance, server):
    server.routes["/v1/companies/x"] = reply(404, body=b'{"error": "not found"}')
    tools = [
        {
            "name": "registry",
            "type": "http",
            "description": "Registry.",
            "url": server.origin + "/v1/companies/{id}",
            "hosts": ["127.0.0.1"],
        }
    ]
    manifest = agent(invoice_triage, tools=tools, approvals={})
    _error(Toolbox(manifest, finance, LOOPBACK), "registry", {}, "tool_argument_missing")
    # Out of the declared path: dots alone (a server may trim what follows), or a slash, which
    # servers decoding %2F before routing (this platform's) read as another endpoint.
    for climbing in ("..", ".. ", ".\t.", "clerk/versions", "../admin", "..\\admin"):
        _error(Toolbox(manifest, finance, LOOPBACK), "registry", {"id": climbing}, "tool_argument_invalid")
    _error(Toolbox(manifest, finance, LOOPBACK), "registry", {"id": ["a"]}, "tool_argument_invalid")
    error = _error(Toolbox(manifest, finance, LOOPBACK), "registry", {"id": "x"}, "http_status")
    assert json.loads(error.message)["status"] == 404
    assert [r["path"] for r in server.requests] == ["/v1/companies/x"]  # the refused calls sent nothing
    _error(Toolbox(manifest, finance), "registry", {"id": "x"}, "http_address_refused")  # default policy


def test_a_subagent_needs_a_server(invoice_triage, finance):
    tools = [{"name": "ask_ap", "type": "subagent", "description": "Ask AP.", "agent": "ap-desk"}]
    manifest = agent(invoice_triage, tools=tools, approvals={})
    error = _error(Toolbox(manifest, finance), "ask_ap", {"input": "Hello"}, "subagent_unavailable")
    assert "Sub-agents need a Foundry server" in error.message and "'ap-desk'" in error.message
    _error(Toolbox(manifest, finance), "ask_ap", {}, "tool_argument_missing")


def test_a_subagent_runs_through_the_injected_runner(invoice_triage, finance):
    calls = []

    def runner(agent_name, text, timeout, key):
        calls.append((agent_name, text, key))
        return "child says hi"

    tools = [{"name": "ask_ap", "type": "subagent", "description": "Ask AP.", "agent": "ap-desk"}]
    toolbox = Toolbox(agent(invoice_triage, tools=tools, approvals={}), finance, ToolOptions(subagent=runner))
    assert toolbox.run(toolbox.get("ask_ap"), {"input": "Hello"}, timeout=5, key="t1:3") == "child says hi"
    assert calls == [("ap-desk", "Hello", "t1:3")]


def test_an_unknown_tool_is_a_tool_error(invoice_triage, finance):
    with pytest.raises(ToolError) as info:
        Toolbox(invoice_triage, finance).get("nope")
    assert info.value.code == "tool_unknown"
