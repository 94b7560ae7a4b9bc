"""DIS business rules over tool-call arguments, typed like the rule's fields."""

import copy

import pytest

from foundry.runtime.rules import ArgumentError, RuleBook


@pytest.fixture
def book(finance) -> RuleBook:
    domain = copy.deepcopy(finance)
    domain["spec"]["rules"].append(
        {"name": "late", "entity": "invoice", "when": 'due_date < "2026-01-01" AND tags:urgent', "then": "warn"}
    )
    return RuleBook(domain)


@pytest.mark.parametrize("amount", [12000, 12000.5, "12000", "1.2e4"])
def test_a_decimal_rule_matches_numbers_however_they_are_sent(book, amount):
    verdict = book.review("invoice", {"amount": amount})
    assert [r.name for r in verdict.approval] == ["large-invoice-needs-approval"]


def test_a_rule_does_not_match_below_its_threshold_or_without_its_field(book):
    assert book.review("invoice", {"amount": 10000}).approval == []
    assert book.review("invoice", {"question": "anything"}).approval == []


def test_deny_and_warn_rules(book):
    assert [r.name for r in book.review("vendor", {"risk": "high"}).denied] == ["no-payment-to-high-risk-vendor"]
    assert book.review("vendor", {"risk": "low"}).denied == []
    warned = book.review("invoice", {"due_date": "2025-12-31", "tags": ["urgent", "q4"]})
    assert [r.name for r in warned.warnings] == ["late"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"amount": "lots"}, "Argument 'amount': 'lots' is not a number."),
        ({"currency": "BTC"}, "Argument 'currency': 'BTC' is not one of EUR, USD, GBP."),
        ({"amount": {"value": 1}}, "Argument 'amount' must be a single number value."),
        ({"tags": "urgent"}, "Argument 'tags' must be a list."),
    ],
)
def test_a_mistyped_argument_is_refused_before_any_rule(book, arguments, message):
    with pytest.raises(ArgumentError) as info:
        book.review("invoice", arguments)
    assert info.value.message == message


def test_tools_without_an_entity_are_not_subject_to_rules(book):
    verdict = book.review(None, {"amount": 99999})
    assert (verdict.denied, verdict.approval, verdict.warnings) == ([], [], [])


@pytest.mark.parametrize("vendor", [1e4, 10000.0, 2**53 + 1, -(2**60)])
def test_a_number_for_a_text_field_that_readers_spell_otherwise_is_refused(finance, vendor):
    """`vendor = "10000"` with `deny`: the model's 1e4 arrives as 10000.0, which Python spelt
    "10000.0" (no rule matched) and a JavaScript or SQL reader of the call spells "10000"."""
    domain = copy.deepcopy(finance)
    domain["spec"]["rules"].append({"name": "blocked", "entity": "invoice", "when": 'vendor = "10000"', "then": "deny"})
    book = RuleBook(domain)
    assert [r.name for r in book.review("invoice", {"vendor": "10000"}).denied] == ["blocked"]
    assert [r.name for r in book.review("invoice", {"vendor": 10000}).denied] == ["blocked"]  # an integer: alike
    with pytest.raises(ArgumentError) as info:
        book.review("invoice", {"vendor": vendor})
    assert info.value.message.startswith("Argument 'vendor' is text")
