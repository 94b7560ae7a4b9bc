"""Validation of Domain and Agent documents: every schema and semantic problem, with its exact
code, line and column, and all of a document's problems reported in one pass."""

import json

import jsonschema_rs
import pytest

from foundry.manifests import Resolution, validate
from foundry.manifests import validation as validation_module
from tests.manifests.conftest import EXAMPLES, codes, edit, finance_resolver, found

DOMAIN = """\
apiVersion: foundry/v1
kind: Domain
metadata:
  name: finance
  labels: {team: payables}
spec:
  entities:
    vendor:
      key: id
      fields:
        id: {type: string}
        risk: {type: enum, values: [low, high]}
    invoice:
      key: id
      fields:
        id: {type: string}
        vendor: {type: reference, entity: vendor}
        amount: {type: decimal}
        approvers: {type: list, items: {type: reference, entity: vendor}}
        tags: {type: list, items: {type: string}}
  relationships:
    - name: billed_by
      from: invoice
      to: vendor
      via: vendor
      cardinality: many_to_one
  rules:
    - name: large-invoice
      entity: invoice
      when: amount > 10000
      then: require_approval
  glossary:
    AP: Accounts payable.
"""

AGENT = """\
apiVersion: foundry/v1
kind: Agent
metadata:
  name: triage
  project: payables
spec:
  domain:
    name: finance
    version: 1
  model:
    provider: scripted
    name: scripted-1
  instructions: Triage invoices.
  tools:
    - name: find_invoices
      type: dis_query
      entity: invoice
      description: Find invoices.
    - name: registry
      type: http
      description: Company registry.
      url: https://registry.example.com/v1/{id}
      hosts: [registry.example.com]
    - name: ask_treasury
      type: subagent
      agent: treasury
      description: Ask treasury.
  approvals:
    tools: [registry]
  limits:
    max_steps: 10
  tests:
    - name: approves-small
      input: Triage INV-1.
      script:
        - tool_call: {tool: find_invoices, arguments: {filter: 'id = "INV-1"'}}
        - respond: Approved.
      expect:
        tools_called: [find_invoices]
        approvals_requested: []
"""

DOMAIN_DATA = validate(DOMAIN).data


def resolver(name: str, version: int) -> Resolution:
    """DOMAIN is `finance` at version 1, and nothing else exists."""
    if name != "finance":
        return Resolution(code="dis_not_found", message=f"No domain named {name!r}.")
    if version != 1:
        return Resolution(code="dis_version_not_found", message=f"finance has no version {version}.", field="version")
    return Resolution(data=DOMAIN_DATA)


def domain(old: str, new: str) -> list[tuple[str, int, int]]:
    return codes(edit(DOMAIN, old, new))


def agent(old: str, new: str) -> list[tuple[str, int, int]]:
    return codes(edit(AGENT, old, new), domains=resolver)


def test_the_documents_used_here_are_valid():
    assert validate(DOMAIN).ok
    result = validate(AGENT, "agents/triage.yaml", domains=resolver)
    assert result.ok and (result.kind, result.name) == ("agent", "triage")
    assert result.as_dict() == {
        "file": "agents/triage.yaml",
        "kind": "agent",
        "name": "triage",
        "valid": True,
        "problems": [],
    }


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/*.yaml")), ids=lambda p: p.name)
def test_every_example_is_valid(path):
    result = validate(path.read_bytes(), str(path), domains=finance_resolver if "invoice" in path.name else None)
    assert result.problems == []


# --- apiVersion and kind ----------------------------------------------------------------------


def test_it_refuses_another_api_version_at_its_value():
    result = validate(edit(DOMAIN, "apiVersion: foundry/v1", "apiVersion: foundry/v2"))
    assert found(result) == [("unsupported_api_version", 1, 13)]  # and no schema problem about it too
    assert result.problems[0].message == "apiVersion must be 'foundry/v1'."


def test_a_missing_api_version_is_reported_at_the_document():
    assert codes("# a comment\n" + DOMAIN.replace("apiVersion: foundry/v1\n", "")) == [
        ("unsupported_api_version", 2, 1)
    ]


def test_it_refuses_an_unknown_kind_and_stops_there():
    result = validate(edit(DOMAIN, "kind: Domain", "kind: Widget"))
    assert found(result) == [("unknown_kind", 2, 7)]
    assert result.kind is None and result.name is None
    assert codes("apiVersion: foundry/v1\nkind: [Domain]\n") == [("unknown_kind", 2, 7)]
    assert codes("apiVersion: foundry/v1\n") == [("unknown_kind", 1, 1)]


# --- schema -----------------------------------------------------------------------------------


def test_schema_required_at_the_mapping_missing_it():
    result = validate(edit(DOMAIN, "      cardinality: many_to_one\n", ""))
    assert found(result) == [("schema_required", 22, 7)]
    assert result.problems[0].message == "Missing required property 'cardinality' (at /spec/relationships/0)"
    assert result.problems[0].path == "/spec/relationships/0/cardinality"


def test_schema_unknown_property_at_each_unknown_key():
    assert domain("id: {type: string}\n        risk", "id: {type: string, colour: red, size: 3}\n        risk") == [
        ("schema_unknown_property", 11, 28),
        ("schema_unknown_property", 11, 41),
    ]


def test_schema_type():
    assert agent("max_steps: 10", "max_steps: ten") == [("schema_type", 31, 16)]


@pytest.mark.parametrize("spelling", ["10.0", "1.0e+1"])
def test_an_integer_written_as_a_whole_float_is_refused_where_it_stands(spelling):
    """JSON Schema takes 10.0 for an integer; stored, it stays a float (jsonb keeps `10.0`) and
    reaches a provider's `max_tokens` or a run's limits as one."""
    result = validate(edit(AGENT, "max_steps: 10", f"max_steps: {spelling}"), domains=resolver)
    assert found(result) == [("schema_type", 31, 16)]
    assert result.problems[0].message == "A whole number: write 10 (at /spec/limits/max_steps)"
    assert agent("max_steps: 10", "max_steps: 10.5") == [("schema_type", 31, 16)]  # as before


def test_a_whole_float_domain_pin_is_one_problem_at_the_pin():
    result = validate(edit(AGENT, "version: 1", "version: 1.0"), domains=resolver)
    assert [(p.code, p.path, p.message) for p in result.problems] == [
        ("schema_type", "/spec/domain/version", "A whole number: write 1 (at /spec/domain/version)")
    ]


def test_the_published_schema_is_left_as_written():
    assert validation_module.WHOLE not in json.dumps(validation_module.schema("agent"))


def test_schema_enum():
    assert domain("then: require_approval", "then: explode") == [("schema_enum", 31, 13)]


def test_schema_pattern():
    assert domain("name: finance", "name: Finance") == [("schema_pattern", 4, 9)]


def test_schema_length():
    assert agent("instructions: Triage invoices.", 'instructions: ""') == [("schema_length", 13, 17)]


@pytest.mark.parametrize("steps", ["0", "1001", "-5"])
def test_schema_range(steps):
    assert agent("max_steps: 10", f"max_steps: {steps}") == [("schema_range", 31, 16)]


def test_schema_size():
    assert domain("values: [low, high]", "values: []") == [("schema_size", 12, 36)]


def test_schema_duplicate_items():
    assert domain("values: [low, high]", "values: [low, low]") == [("schema_duplicate_items", 12, 36)]


def test_schema_not_allowed_at_the_key_a_tool_type_forbids():
    source = edit(
        AGENT, "      description: Find invoices.\n", "      description: Find invoices.\n      url: https://x.test/\n"
    )
    result = validate(source)
    assert found(result) == [("schema_not_allowed", 19, 7)]
    assert result.problems[0].message == "'url' is not allowed here."


def test_schema_property_name_at_the_offending_key():
    result = validate(edit(DOMAIN, "labels: {team: payables}", "labels: {ok: yes, Team: payables}"))
    assert found(result) == [("schema_property_name", 5, 21)]
    assert result.problems[0].path == "/metadata/labels/Team"


def test_schema_invalid_for_any_other_kind_of_schema_error(monkeypatch):
    strict = jsonschema_rs.validator_for({"properties": {"spec": {"not": {"type": "object"}}}})
    monkeypatch.setattr(validation_module, "_validator", lambda kind: strict)
    assert codes(DOMAIN) == [("schema_invalid", 7, 3)]


def test_schema_problems_about_api_version_and_kind_are_not_repeated():
    assert codes(edit(AGENT, "apiVersion: foundry/v1", "apiVersion: 1")) == [("unsupported_api_version", 1, 13)]


# --- domain: entities and fields --------------------------------------------------------------


def test_dis_unknown_entity_of_a_reference_field():
    # The relationship through that field no longer reaches `vendor` either.
    assert domain("vendor: {type: reference, entity: vendor}", "vendor: {type: reference, entity: vendr}") == [
        ("dis_unknown_entity", 17, 43),
        ("relationship_via_mismatch", 25, 12),
    ]


def test_dis_unknown_entity_of_a_list_item_reference():
    assert domain("items: {type: reference, entity: vendor}", "items: {type: reference, entity: vendr}") == [
        ("dis_unknown_entity", 19, 66)
    ]


@pytest.mark.parametrize(("end", "line", "column"), [("from: invoice", 23, 13), ("to: vendor", 24, 11)])
def test_dis_unknown_entity_at_either_end_of_a_relationship(end, line, column):
    assert domain(end, end + "s") == [("dis_unknown_entity", line, column)]


def test_dis_unknown_entity_of_a_rule():
    assert domain("entity: invoice\n      when", "entity: invoices\n      when") == [("dis_unknown_entity", 29, 15)]


def test_dis_unknown_field_as_an_entity_key():
    assert domain("    vendor:\n      key: id", "    vendor:\n      key: ident") == [("dis_unknown_field", 9, 12)]


def test_a_field_named_as_a_dis_query_argument_is_refused():
    """A dis_query tool would advertise the field's type to the model, then read the value as its
    own `question` (a string) or `filter` (AIP-160)."""
    risk = "        risk: {type: enum, values: [low, high]}"
    added = f"{risk}\n        question: {{type: integer}}\n        filter: {{type: string}}"
    assert domain(risk, added) == [("dis_field_reserved", 13, 19), ("dis_field_reserved", 14, 17)]


def test_dis_unknown_field_as_a_relationship_via():
    assert domain("via: vendor", "via: seller") == [("dis_unknown_field", 25, 12)]


def test_relationship_via_mismatch_when_the_field_refers_elsewhere():
    assert domain("via: vendor", "via: amount") == [("relationship_via_mismatch", 25, 12)]


def test_relationship_via_a_list_of_references_is_accepted():
    assert domain("via: vendor", "via: approvers") == []


def test_relationship_duplicate_name_at_the_second():
    second = (
        "      cardinality: many_to_one\n    - {name: billed_by, from: invoice, to: vendor, cardinality: one_to_one}\n"
    )
    assert domain("      cardinality: many_to_one\n", second) == [("relationship_duplicate_name", 27, 14)]


# --- domain: rules ----------------------------------------------------------------------------


def test_rule_duplicate_name_at_the_second():
    second = (
        "      then: require_approval\n    - {name: large-invoice, entity: vendor, when: risk = high, then: deny}\n"
    )
    assert domain("      then: require_approval\n", second) == [("rule_duplicate_name", 32, 14)]


@pytest.mark.parametrize(
    ("when", "column"),
    [("amount >", 21), ("amount > 10000 AND", 31), ("(amount > 1", 24), ('amount = "unterminated', 22)],
)
def test_rule_expression_invalid_where_the_expression_breaks(when, column):
    assert domain("when: amount > 10000", f"when: {when}") == [("rule_expression_invalid", 30, column)]


@pytest.mark.parametrize("when", ['" "', '"\\t \\n"'])
def test_a_blank_rule_condition_is_refused_not_taken_as_matching_every_call(when):
    """The empty filter matches everything: a blank `when` would deny (or hold for approval)
    every call on the entity."""
    assert [code for code, *_ in domain("when: amount > 10000", f"when: {when}")] == ["rule_expression_invalid"]


def test_rule_expression_invalid_when_too_deeply_nested():
    when = "(" * 40 + "amount > 1" + ")" * 40
    assert domain("when: amount > 10000", f'when: "{when}"') == [("rule_expression_invalid", 30, 46)]  # the 33rd `(`


def test_rule_unknown_field_at_the_field():
    result = validate(edit(DOMAIN, "when: amount > 10000", 'when: amount > 1 AND colour = "red"'))
    assert found(result) == [("rule_unknown_field", 30, 28)]
    assert "Fields of 'invoice'" in result.problems[0].message
    assert result.problems[0].path == "/spec/rules/0/when"


def test_rule_invalid_value_at_the_value_inside_the_expression():
    assert domain("when: amount > 10000", 'when: amount > "lots"') == [("rule_invalid_value", 30, 22)]


def test_rule_invalid_value_inside_a_quoted_expression():
    assert domain("when: amount > 10000", "when: 'amount > \"lots\"'") == [("rule_invalid_value", 30, 23)]


def test_rule_invalid_value_of_an_enum():
    rule = "    - {name: risky, entity: vendor, when: risk = medium, then: deny}\n  glossary:"
    assert domain("  glossary:", rule) == [("rule_invalid_value", 32, 50)]


def test_rule_problem_in_a_block_scalar_is_reported_at_the_scalar():
    assert domain("when: amount > 10000", 'when: |\n        amount > "lots"') == [("rule_invalid_value", 30, 13)]


def test_a_rule_may_use_every_kind_of_field():
    when = 'amount >= 1.5 AND id = "INV-*" AND vendor = "V1" AND tags:urgent AND approvers:"V2"'
    assert domain("when: amount > 10000", f"when: '{when}'") == []


# --- agent ------------------------------------------------------------------------------------


def test_provider_unknown():
    result = validate(edit(AGENT, "provider: scripted", "provider: acme"), domains=resolver)
    assert found(result) == [("provider_unknown", 11, 15)]
    assert result.problems[0].message == "Unknown provider 'acme'; one of scripted, openai, anthropic."


def test_tool_duplicate_name_at_the_second():
    assert agent("- name: ask_treasury", "- name: registry") == [("tool_duplicate_name", 24, 13)]


def test_approval_unknown_tool_at_the_item():
    assert agent("tools: [registry]", "tools: [registry, refund]") == [("approval_unknown_tool", 29, 23)]


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://other.example.com/v1", "[registry.example.com]"),
        ("https://example.com/", "['*.example.com']"),  # a wildcard does not match the bare domain
        ("https://evilexample.com/", "['*.example.com']"),
        ("https://registry.example.com.evil.test/", "[registry.example.com]"),
        ("https://registry.example.com:8443/", "['registry.example.com:9000']"),
    ],
)
def test_http_host_undeclared_at_the_url(url, hosts):
    source = edit(
        edit(AGENT, "https://registry.example.com/v1/{id}", url), "hosts: [registry.example.com]", f"hosts: {hosts}"
    )
    assert codes(source, domains=resolver) == [("http_host_undeclared", 22, 12)]


@pytest.mark.parametrize("url", ["https:///path", "https://registry.exa\tmple.com/v1"])  # none; none httpx reads
def test_a_url_without_a_host_to_reach_is_invalid_at_the_url(url):
    """As the runtime says of it at every call (network._check): `http_url_invalid`."""
    assert codes(edit(AGENT, "https://registry.example.com/v1/{id}", url), domains=resolver) == [
        ("http_url_invalid", 22, 12)
    ]


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://api.example.com/", "['*.example.com']"),
        ("https://a.b.example.com/", "['*.example.com']"),
        ("https://REGISTRY.Example.com/", "[registry.example.com]"),
        ("https://registry.example.com:8443/", "['registry.example.com:8443']"),
        ("https://registry.example.com:8443/", "[registry.example.com]"),
        ("http://10.0.0.7:8080/", "['10.0.0.7:8080']"),
        # the port the URL reaches is its scheme's, as the runtime reads it (network._check)
        ("https://registry.example.com/", "['registry.example.com:443']"),
        ("http://registry.example.com/", "['registry.example.com:80']"),
        ("https://registry.example.com./", "[registry.example.com]"),
    ],
)
def test_a_declared_host_is_accepted(url, hosts):
    source = edit(
        edit(AGENT, "https://registry.example.com/v1/{id}", url), "hosts: [registry.example.com]", f"hosts: {hosts}"
    )
    assert codes(source, domains=resolver) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://registry.example.com:99999/",
        "http://[::1/",
        # Credentials in the URL would be kept in the manifest, its history and exports, shown to
        # every reader of agents.
        "https://svc:s3cret@registry.example.com/v1/{id}",
        "https://token@registry.example.com/v1/{id}",
    ],
)
def test_http_url_invalid(url):
    assert agent("https://registry.example.com/v1/{id}", url) == [("http_url_invalid", 22, 12)]


def test_subagent_self():
    assert agent("agent: treasury", "agent: triage") == [("subagent_self", 26, 14)]


def test_test_duplicate_name_at_the_second():
    second = "        approvals_requested: []\n    - name: approves-small\n      input: Again.\n"
    assert agent("        approvals_requested: []\n", second) == [("test_duplicate_name", 41, 13)]


@pytest.mark.parametrize(
    ("old", "new", "line", "column"),
    [
        ("{tool: find_invoices, arguments", "{tool: refund, arguments", 36, 29),
        ("tools_called: [find_invoices]", "tools_called: [find_invoices, refund]", 39, 39),
        ("approvals_requested: []", "approvals_requested: [refund]", 40, 31),
    ],
)
def test_test_unknown_tool(old, new, line, column):
    assert agent(old, new) == [("test_unknown_tool", line, column)]


# --- agent: the domain pin --------------------------------------------------------------------


def test_dis_unknown_entity_of_a_dis_query_tool_with_a_resolver():
    source = edit(AGENT, "entity: invoice", "entity: invoices")
    assert codes(source, domains=resolver) == [("dis_unknown_entity", 17, 15)]
    assert codes(source) == []  # offline, without the domain, it cannot be checked


def test_an_http_tool_may_name_the_entity_it_acts_on_and_it_must_exist():
    acting = edit(
        AGENT,
        "      url: https://registry.example.com/v1/{id}\n",
        "      url: https://registry.example.com/v1/{id}\n      entity: invoice\n",
    )
    assert codes(acting, domains=resolver) == []
    unknown = edit(acting, "      entity: invoice\n      hosts", "      entity: invoices\n      hosts")
    assert [c[0] for c in codes(unknown, domains=resolver)] == ["dis_unknown_entity"]


def test_dis_not_found_at_the_pinned_name():
    result = validate(edit(AGENT, "name: finance", "name: treasury"), domains=resolver)
    assert found(result) == [("dis_not_found", 8, 11)]
    assert result.problems[0].message == "No domain named 'treasury'."


def test_dis_version_not_found_at_the_pinned_version():
    result = validate(edit(AGENT, "version: 1", "version: 2"), domains=resolver)
    assert found(result) == [("dis_version_not_found", 9, 14)]
    assert result.problems[0].message == "finance has no version 2."


def test_a_resolver_that_finds_nothing_without_saying_why_means_not_found():
    result = validate(AGENT, domains=lambda name, version: Resolution())
    assert found(result) == [("dis_not_found", 8, 11)]
    assert result.problems[0].message == "No domain 'finance'."


def test_the_resolver_is_not_asked_about_a_pin_that_is_malformed():
    asked = []
    result = validate(edit(AGENT, "version: 1", "version: one"), domains=lambda *pin: asked.append(pin))
    assert found(result) == [("schema_type", 9, 14)]
    assert asked == []


# --- everything at once -----------------------------------------------------------------------


def test_every_problem_of_a_domain_is_reported_in_one_pass_in_line_order():
    source = DOMAIN
    for old, new in [
        ("name: finance", "name: Finance"),
        (
            "key: id\n      fields:\n        id: {type: string}\n        risk",
            "key: ident\n      fields:\n        id: {type: string}\n        risk",
        ),
        ("entity: vendor}\n", "entity: vendr}\n"),
        ("to: vendor", "to: vendors"),
        ("when: amount > 10000", "when: colour = 1"),
        ("then: require_approval", "then: explode"),
    ]:
        source = edit(source, old, new)
    assert codes(source) == [
        ("schema_pattern", 4, 9),
        ("dis_unknown_field", 9, 12),
        ("dis_unknown_entity", 17, 43),
        ("dis_unknown_entity", 24, 11),
        ("rule_unknown_field", 30, 13),
        ("schema_enum", 31, 13),
    ]


def test_every_problem_of_an_agent_is_reported_in_one_pass_in_line_order():
    source = AGENT
    for old, new in [
        ("version: 1", "version: 2"),
        ("provider: scripted", "provider: acme"),
        ("- name: ask_treasury", "- name: registry"),
        ("tools: [registry]", "tools: [refund]"),
        ("max_steps: 10", "max_steps: 0"),
        ("tools_called: [find_invoices]", "tools_called: [lookup]"),
    ]:
        source = edit(source, old, new)
    result = validate(source, "agents/triage.yaml", domains=resolver)
    assert found(result) == [
        ("dis_version_not_found", 9, 14),
        ("provider_unknown", 11, 15),
        ("tool_duplicate_name", 24, 13),
        ("approval_unknown_tool", 29, 13),
        ("schema_range", 31, 16),
        ("test_unknown_tool", 39, 24),
    ]
    assert {p.file for p in result.problems} == {"agents/triage.yaml"}
    assert result.as_dict()["valid"] is False and len(result.as_dict()["problems"]) == 6


def test_semantic_checks_run_on_the_parts_that_have_the_right_shape():
    source = edit(DOMAIN, "    - name: billed_by\n", "    - name: [billed_by]\n")
    source = edit(source, "to: vendor", "to: {entity: vendor}")
    source = edit(source, "from: invoice", "from: invoices")
    assert codes(source) == [("schema_type", 22, 13), ("dis_unknown_entity", 23, 13), ("schema_type", 24, 11)]
