"""The usage statement's CSV (apps/billing/statements.py): a quote between a separator and a formula
character does not let a cell a spreadsheet splits there start a formula."""

import csv
import io
from datetime import UTC, datetime

import pytest

from tests.api.conftest import api, issue
from tests.billing.test_rollups import ledger_add
from tests.conftest import client_for

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str, delimiter: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]


@pytest.mark.parametrize(
    ("model", "delimiter"),
    [
        ('gpt;"=1+1;', ";"),
        ('gpt\t"=1+1\t', "\t"),
        ('gpt|"@SUM(1+1)|', "|"),
    ],
)
def test_a_quote_after_a_separator_does_not_let_a_cell_start_a_formula(acme, model, delimiter):
    """docs/billing.md, Statements: cells that a spreadsheet would run as a formula are prefixed
    with `'`, "as is such a character after a `,` `;` `|` or tab inside a cell (a spreadsheet whose
    list separator is `;` splits the cell there)". A model's name is the manifest's free text.

    A name like `gpt;"=…;` escapes that: `;` is followed by `"`, not by `=`, so no `'` is added;
    the CSV writer doubles the quote (`"gpt;""=…;"`), and a spreadsheet splitting at `;` reads the
    cell `""=…` as a quoted empty string followed by `=…`: a cell that starts a formula.
    Expected: no cell read with any of the documented separators starts a formula."""
    ledger_add(acme, model=model, when=datetime(2026, 1, 5, tzinfo=UTC))
    for response in (
        api(acme, issue(acme)).get("/api/v1/usage/statement", {"month": "2026-01", "format": "csv"}),
        client_for(acme, "viewer@acme.test").get("/usage/statement/", {"month": "2026-01", "format": "csv"}),
    ):
        assert response.status_code == 200
        text = response.content.decode()
        assert [c for c in _cells(text, delimiter) if c.startswith(FORMULA_START)] == []
