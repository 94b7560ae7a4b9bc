"""Structural and text diffs between two versions of a Domain or an Agent document."""

import copy
from pathlib import Path

import pytest
import yaml

from foundry.manifests import Change, structural_diff, text_diff

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FINANCE = yaml.safe_load((EXAMPLES / "domains" / "finance.yaml").read_text())
TRIAGE = yaml.safe_load((EXAMPLES / "agents" / "invoice-triage.yaml").read_text())


def _triples(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.action, c.what, c.name) for c in changes]


def test_it_finds_nothing_between_equal_documents():
    assert structural_diff("domain", FINANCE, copy.deepcopy(FINANCE)) == []
    assert structural_diff("agent", TRIAGE, copy.deepcopy(TRIAGE)) == []


def test_it_reports_fields_one_by_one_and_the_entity_only_for_its_own_attributes():
    new = copy.deepcopy(FINANCE)
    vendor = new["spec"]["entities"]["vendor"]
    del vendor["fields"]["onboarded_on"]
    vendor["fields"]["rating"] = {"type": "integer"}
    vendor["fields"]["risk"]["values"] = ["low", "high"]
    new["spec"]["entities"]["invoice"]["description"] = "A bill."

    changes = structural_diff("domain", FINANCE, new)

    assert _triples(changes) == [
        ("changed", "entity", "invoice"),
        ("removed", "field", "vendor.onboarded_on"),
        ("added", "field", "vendor.rating"),
        ("changed", "field", "vendor.risk"),
    ]
    invoice = changes[0]
    assert invoice.before == {"description": "A bill received from a vendor.", "key": "id"}
    assert invoice.after == {"description": "A bill.", "key": "id"}
    assert changes[1].before == {"type": "date"} and changes[1].after is None
    assert changes[2].before is None and changes[2].after == {"type": "integer"}
    assert changes[3].before == {"type": "enum", "values": ["low", "medium", "high"]}
    assert changes[3].after == {"type": "enum", "values": ["low", "high"]}


def test_it_reports_a_whole_entity_added_or_removed_without_its_fields():
    new = copy.deepcopy(FINANCE)
    payment = new["spec"]["entities"].pop("payment")
    new["spec"]["entities"]["purchase_order"] = {"fields": {"id": {"type": "string"}}}

    changes = structural_diff("domain", FINANCE, new)

    assert _triples(changes) == [("removed", "entity", "payment"), ("added", "entity", "purchase_order")]
    assert changes[0].before == payment and changes[0].after is None
    assert changes[1].after == {"fields": {"id": {"type": "string"}}}


def test_it_keys_relationships_and_rules_by_name_so_reordering_changes_nothing():
    new = copy.deepcopy(FINANCE)
    new["spec"]["relationships"].reverse()
    new["spec"]["rules"].reverse()
    assert structural_diff("domain", FINANCE, new) == []

    new["spec"]["relationships"] = [r for r in new["spec"]["relationships"] if r["name"] != "settles"]
    new["spec"]["rules"][0]["when"] = 'risk = "high" OR risk = "medium"'
    new["spec"]["rules"].append({"name": "no-weekend-payments", "entity": "payment", "when": "x", "then": "warn"})

    changes = structural_diff("domain", FINANCE, new)

    assert _triples(changes) == [
        ("removed", "relationship", "settles"),
        ("changed", "rule", "no-payment-to-high-risk-vendor"),
        ("added", "rule", "no-weekend-payments"),
    ]
    assert changes[1].before["when"] == 'risk = "high"'
    assert changes[1].after["when"] == 'risk = "high" OR risk = "medium"'


def test_it_reports_glossary_terms_and_metadata():
    new = copy.deepcopy(FINANCE)
    del new["spec"]["glossary"]["AP"]
    new["spec"]["glossary"]["three-way match"] = "PO, receipt and invoice agree."
    new["metadata"]["description"] = "Payables."
    new["metadata"]["labels"] = {"team": "treasury", "tier": "gold"}

    changes = structural_diff("domain", FINANCE, new)

    assert _triples(changes) == [
        ("changed", "metadata", "description"),
        ("changed", "metadata", "labels.team"),
        ("added", "metadata", "labels.tier"),
        ("removed", "glossary term", "AP"),
        ("changed", "glossary term", "three-way match"),
    ]
    assert changes[1].before == "accounts-payable" and changes[1].after == "treasury"


def test_it_tells_true_from_one_and_one_from_one_point_zero():
    new = copy.deepcopy(FINANCE)
    new["spec"]["entities"]["vendor"]["fields"]["id"]["required"] = 1
    assert _triples(structural_diff("domain", FINANCE, new)) == [("changed", "field", "vendor.id")]

    agent = copy.deepcopy(TRIAGE)
    agent["spec"]["model"]["parameters"]["temperature"] = 0.0
    assert _triples(structural_diff("agent", TRIAGE, agent)) == [("changed", "model", "model")]


def test_it_reports_every_part_of_an_agent():
    new = copy.deepcopy(TRIAGE)
    spec = new["spec"]
    spec["domain"]["version"] = 2
    spec["model"]["name"] = "scripted-2"
    spec["instructions"] += "Be brief.\n"
    spec["tools"] = [t for t in spec["tools"] if t["name"] != "find_vendors"]
    spec["tools"][0]["max_results"] = 50
    spec["tools"].append({"name": "ask_treasury", "type": "subagent", "agent": "treasury", "description": "Ask."})
    spec["approvals"]["tools"] = ["find_invoices"]
    spec["limits"] = {"max_steps": 20, "timeout_seconds": 120}
    spec["tests"].append({"name": "large-invoice", "input": "Triage INV-9."})
    new["metadata"]["project"] = "payables"

    changes = structural_diff("agent", TRIAGE, new)

    assert _triples(changes) == [
        ("changed", "metadata", "project"),
        ("changed", "domain pin", "domain"),
        ("changed", "model", "model"),
        ("changed", "instructions", "instructions"),
        ("added", "tool", "ask_treasury"),
        ("changed", "tool", "find_invoices"),
        ("removed", "tool", "find_vendors"),
        ("added", "approvals", "find_invoices"),
        ("removed", "approvals", "vendor_registry"),
        ("changed", "limits", "max_steps"),
        ("removed", "limits", "max_tokens"),
        ("added", "test", "large-invoice"),
    ]
    pin = changes[1]
    assert pin.before == {"name": "finance", "version": 1} and pin.after == {"name": "finance", "version": 2}
    assert changes[3].after.endswith("Be brief.\n")
    assert changes[5].before["max_results"] == 20 and changes[5].after["max_results"] == 50
    assert changes[9].as_dict() == {
        "action": "changed",
        "what": "limits",
        "name": "max_steps",
        "before": 12,
        "after": 20,
    }


def test_it_reports_a_section_added_or_removed_whole():
    new = copy.deepcopy(TRIAGE)
    del new["spec"]["limits"], new["spec"]["approvals"]
    new["spec"]["model"].pop("parameters")

    changes = structural_diff("agent", TRIAGE, new)

    assert _triples(changes) == [
        ("changed", "model", "model"),
        ("removed", "approvals", "vendor_registry"),
        ("removed", "limits", "max_steps"),
        ("removed", "limits", "max_tokens"),
        ("removed", "limits", "timeout_seconds"),
    ]
    assert _triples(structural_diff("agent", new, TRIAGE))[1:] == [
        ("added", "approvals", "vendor_registry"),
        ("added", "limits", "max_steps"),
        ("added", "limits", "max_tokens"),
        ("added", "limits", "timeout_seconds"),
    ]


def test_it_is_deterministic_whatever_the_order_of_keys():
    old, new = copy.deepcopy(FINANCE), copy.deepcopy(FINANCE)
    new["spec"]["entities"] = dict(reversed(new["spec"]["entities"].items()))
    for entity in new["spec"]["entities"].values():
        entity["fields"] = dict(reversed(entity["fields"].items()))
        entity["fields"]["note"] = {"type": "string"}
    first = structural_diff("domain", old, new)
    assert [c.name for c in first] == ["invoice.note", "payment.note", "vendor.note"]
    assert structural_diff("domain", copy.deepcopy(old), copy.deepcopy(new)) == first


def test_it_diffs_invalid_documents_without_raising():
    broken = {"spec": {"entities": ["not", "a", "mapping"], "rules": [{"when": "x"}, "y", {"name": 3}]}}
    changes = structural_diff("domain", FINANCE, broken)
    assert ("removed", "entity", "invoice") in _triples(changes)
    assert ("added", "rule", "#0") in _triples(changes)
    assert structural_diff("agent", {}, {"spec": {"tools": "none", "limits": [1]}}) == []


def test_it_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be"):
        structural_diff("Domain", FINANCE, FINANCE)


def test_change_is_frozen():
    change = Change("added", "tool", "lookup", None, {"name": "lookup"})
    with pytest.raises(AttributeError):
        change.name = "other"


def test_text_diff_is_a_unified_diff_with_labels():
    old = "a: 1\nb: 2\nc: 3\n"
    new = "a: 1\nb: 20\nc: 3\n"
    assert text_diff(old, new, "finance@1", "finance@2") == (
        "--- finance@1\n+++ finance@2\n@@ -1,3 +1,3 @@\n a: 1\n-b: 2\n+b: 20\n c: 3\n"
    )


def test_text_diff_of_equal_texts_is_empty():
    assert text_diff("a: 1\n", "a: 1\n", "x", "y") == ""
    assert text_diff("", "", "x", "y") == ""


def test_text_diff_marks_a_missing_final_newline():
    assert text_diff("a: 1\n", "a: 1", "x", "y") == (
        "--- x\n+++ y\n@@ -1 +1 @@\n-a: 1\n+a: 1\n\\ No newline at end of file\n"
    )
    assert text_diff("", "a: 1\n", "x", "y") == "--- x\n+++ y\n@@ -0,0 +1 @@\n+a: 1\n"


def test_text_diff_splits_lines_at_newlines_only():
    # As git does: U+2028 and friends do not start a line of the diff.
    diff = text_diff("a: x\u2028y\nb: 1\n", "a: x\u2028z\nb: 1\n", "x", "y")
    assert diff.split("\n")[2:] == ["@@ -1,2 +1,2 @@", "-a: x\u2028y", "+a: x\u2028z", " b: 1", ""]
