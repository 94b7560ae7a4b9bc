"""Monthly statements: exact JSON and CSV for a seeded month, through the API, the console and the
command; every bad period is a 400 (or a CLI error) that writes nothing; a workspace's statement
holds its own usage only, even when another's falls on the same days."""

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.billing.statements import period_parse
from foundry.errors import ServiceError
from tests.api.conftest import api, issue
from tests.billing.test_rollups import ledger_add
from tests.conftest import client_for

LINES = [
    {"project": "p", "agent": "alpha", "provider": "openai", "model": "m1", "calls": 2, "input_tokens": 120,
     "output_tokens": 12, "cached_tokens": 5, "cost_usd": "0.75000000", "unpriced_calls": 0, "cache_write_tokens": 0},
    {"project": "p", "agent": "alpha", "provider": "openai", "model": "m2", "calls": 1, "input_tokens": 30,
     "output_tokens": 3, "cached_tokens": 0, "cost_usd": "0.00000000", "unpriced_calls": 1, "cache_write_tokens": 0},
    {"project": "q", "agent": "beta", "provider": "openai", "model": "m1", "calls": 1, "input_tokens": 7,
     "output_tokens": 1, "cached_tokens": 0, "cost_usd": "0.12500000", "unpriced_calls": 0, "cache_write_tokens": 0},
]  # fmt: skip
TOTALS = {"calls": 4, "input_tokens": 157, "output_tokens": 16, "cached_tokens": 5, "cost_usd": "0.87500000",
          "unpriced_calls": 1, "cache_write_tokens": 0}  # fmt: skip
JANUARY = {
    "tenant": "acme",
    "period": {"month": "2026-01", "start": "2026-01-01", "end": "2026-01-31"},
    "as_of": "2026-02-01T00:00:00Z",
    "currency": "USD",
    "lines": LINES,
    "totals": TOTALS,
}
CSV = (
    "project,agent,provider,model,calls,input_tokens,output_tokens,cached_tokens,cost_usd,unpriced_calls,cache_write_tokens\r\n"
    "p,alpha,openai,m1,2,120,12,5,0.75000000,0,0\r\n"
    "p,alpha,openai,m2,1,30,3,0,0.00000000,1,0\r\n"
    "q,beta,openai,m1,1,7,1,0,0.12500000,0,0\r\n"
    "TOTAL,,,,4,157,16,5,0.87500000,1,0\r\n"
)


def _next_month() -> str:
    today = timezone.now().astimezone(UTC).date()
    return f"{today.year + today.month // 12}-{today.month % 12 + 1:02d}"


BAD_PERIODS = [
    ({"month": "2026-13"}, "period_invalid"),
    ({"month": "2026-1"}, "period_invalid"),
    ({"month": "26-01"}, "period_invalid"),
    ({"month": "january"}, "period_invalid"),
    ({"month": "1999-12"}, "period_invalid"),
    ({"month": "0000-01"}, "period_invalid"),
    ({"month": "99999-01"}, "period_invalid"),
    ({"month": "2026-01-01"}, "period_invalid"),
    ({"month": "9999-12"}, "period_in_future"),
    ({"month": _next_month()}, "period_in_future"),
    ({"start": "2026-01-10", "end": "2026-01-01"}, "period_invalid"),  # reversed
    ({"start": "2026-01-10"}, "period_invalid"),
    ({"month": "2026-01", "start": "2026-01-01", "end": "2026-01-02"}, "period_invalid"),
    ({"start": "2026-02-30", "end": "2026-03-01"}, "period_invalid"),
    ({"start": "2026-01-01T00:00", "end": "2026-01-02"}, "period_invalid"),
    ({"start": "2024-01-01", "end": "2025-12-31"}, "period_invalid"),  # longer than 366 days
    ({"start": "2026-01-01", "end": "9999-12-31"}, "period_in_future"),
    ({"start": "9999-12-30", "end": "9999-12-31"}, "period_in_future"),
]


@pytest.fixture
def acme_admin(acme):
    return api(acme, issue(acme))


@pytest.fixture
def globex_admin(globex):
    return api(globex, issue(globex))


@pytest.fixture
def january(acme, globex):
    ledger_add(acme, when=datetime(2026, 1, 5, tzinfo=UTC))
    ledger_add(acme, tokens=(20, 2, 0), cost="0.5", when=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
    ledger_add(acme, model="m2", tokens=(30, 3, 0), cost=None, when=datetime(2026, 1, 10, tzinfo=UTC))
    ledger_add(acme, agent="beta", project="q", tokens=(7, 1, 0), cost="0.125", when=datetime(2026, 1, 1, tzinfo=UTC))
    ledger_add(acme, when=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))  # December
    ledger_add(acme, when=datetime(2026, 2, 1, tzinfo=UTC))  # February
    # globex, the same days and the same names: never on acme's statement.
    ledger_add(globex, tokens=(10**6, 10**6, 0), cost="99", when=datetime(2026, 1, 5, tzinfo=UTC))


def test_the_api_gives_the_months_statement_as_json(acme, january):
    viewer = api(acme, issue(acme, role="viewer", scopes=["read"]))  # usage.view: every role
    response = viewer.get("/api/v1/usage/statement", {"month": "2026-01"})
    assert response.status_code == 200, response.content
    assert response.json() == JANUARY
    assert response["Cache-Control"] == "no-store"


def test_the_api_gives_it_as_csv(acme_admin, january):
    response = acme_admin.get("/api/v1/usage/statement", {"month": "2026-01", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="usage-acme-2026-01.csv"'
    assert response.content.decode() == CSV


def test_a_range_of_days_includes_both_ends(acme_admin, january):
    response = acme_admin.get("/api/v1/usage/statement", {"start": "2026-01-05", "end": "2026-01-10"})
    body = response.json()
    assert body["period"] == {"month": None, "start": "2026-01-05", "end": "2026-01-10"}
    assert body["as_of"] == "2026-01-11T00:00:00Z"
    assert [(line["model"], line["calls"]) for line in body["lines"]] == [("m1", 1), ("m2", 1)]


def test_the_current_month_is_counted_until_now(acme_admin, acme):
    ledger_add(acme, when=timezone.now())
    body = acme_admin.get("/api/v1/usage/statement").json()
    assert body["period"]["month"] == f"{timezone.now().astimezone(UTC):%Y-%m}"
    assert body["totals"]["calls"] == 1


def test_a_statement_holds_its_own_workspace_only(globex_admin, acme_admin, january):
    body = globex_admin.get("/api/v1/usage/statement", {"month": "2026-01"}).json()
    assert body["tenant"] == "globex"
    assert [(line["input_tokens"], line["cost_usd"]) for line in body["lines"]] == [(10**6, "99.00000000")]
    assert (
        "1000000"
        not in acme_admin.get("/api/v1/usage/statement", {"month": "2026-01", "format": "csv"}).content.decode()
    )


@pytest.mark.parametrize(("params", "code"), BAD_PERIODS)
def test_a_bad_period_is_a_400_with_its_code(acme_admin, january, params, code):
    response = acme_admin.get("/api/v1/usage/statement", params)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("month=2026-01&month=2026-02", "period_invalid"),
        ("format=xml", "format_invalid"),
        ("format=csv&format=json", "format_invalid"),
    ],
)
def test_repeated_or_unknown_parameters_are_400s(acme_admin, query, code):
    response = acme_admin.get(f"/api/v1/usage/statement?{query}")
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_a_token_without_the_read_scope_is_refused(acme, january):
    response = api(acme, issue(acme, scopes=["run"])).get("/api/v1/usage/statement", {"month": "2026-01"})
    assert response.status_code == 403


def test_the_console_downloads_the_statement(acme, january):
    viewer = client_for(acme, "viewer@acme.test")
    response = viewer.get("/usage/statement/", {"month": "2026-01", "format": "csv"})
    assert response.status_code == 200
    assert response.content.decode() == CSV
    response = viewer.get("/usage/statement/", {"month": "2026-01", "format": "json"})
    assert json.loads(response.content) == JANUARY


@pytest.mark.parametrize(("params", "code"), [*BAD_PERIODS[:3], ({"format": "pdf"}, "format_invalid")])
def test_the_console_refuses_a_bad_period_with_a_400(acme, params, code):
    response = client_for(acme, "viewer@acme.test").get("/usage/statement/", params)
    assert response.status_code == 400
    assert code in response.content.decode()


def test_the_command_writes_the_statement(acme, january, tmp_path, capsys):
    call_command("usage_statement", "--tenant", "acme", "--month", "2026-01", "--format", "csv")
    assert capsys.readouterr().out == CSV
    target = tmp_path / "jan.json"
    call_command(
        "usage_statement", "--tenant", "acme", "--month", "2026-01", "--format", "json", "--output", str(target)
    )
    assert json.loads(target.read_text()) == JANUARY


@pytest.mark.parametrize(("params", "code"), BAD_PERIODS)
def test_the_command_refuses_a_bad_period_and_writes_nothing(acme, tmp_path, params, code):
    target = tmp_path / "out.csv"
    args = [item for name, value in params.items() for item in (f"--{name}", value)]
    with pytest.raises(CommandError, match=code):
        call_command("usage_statement", "--tenant", "acme", *args, "--output", str(target))
    assert not target.exists()


def test_the_command_refuses_an_unknown_tenant(db, tmp_path):
    with pytest.raises(CommandError, match="no tenant"):
        call_command("usage_statement", "--tenant", "nobody", "--month", "2026-01", "--output", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_a_month_in_december_ends_with_the_year():
    period = period_parse(month="2025-12", today=date(2026, 1, 1))
    assert (period.start, period.end) == (date(2025, 12, 1), date(2026, 1, 1))
    with pytest.raises(ServiceError) as refused:
        period_parse(month="2026-02", today=date(2026, 1, 31))
    assert refused.value.code == "period_in_future"


def test_the_console_refuses_a_statement_parameter_given_twice(acme):
    """docs/billing.md, Statements: a parameter given twice is `period_invalid` (400). The API
    refuses it; the console's download silently takes one of the two months."""
    viewer = client_for(acme, "viewer@acme.test")
    response = viewer.get("/usage/statement/?month=2026-01&month=2026-02&format=json")
    assert response.status_code == 400
    assert b"period_invalid" in response.content


@pytest.mark.parametrize("query", ["days=7&days=90", "by=agent&by=model"])
def test_the_console_usage_page_refuses_a_chart_parameter_given_twice(acme, query):
    """`?days=7&days=90` is refused (400 `days_invalid`), as the statement's parameters are, rather
    than the last one charted."""
    response = client_for(acme, "viewer@acme.test").get(f"/usage/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0].encode() + b"_invalid" in response.content


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str, delimiter: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]


@pytest.mark.parametrize(
    "model",
    [
        *("gpt-4o;=1+1;", "x;=cmd|' /C calc'!A0;", "x;@SUM(1+1);", "=1+1", "a,-2"),
        # A tab is a separator and a formula character both: each one gets its quote.
        *("x\t\t=HYPERLINK(1)", "x;\t=1+1", "x|\t@SUM(1)"),
        # Quotes between a separator and a formula character: written `"gpt;""=1+1;"`, split at
        # `;` the cell `""=1+1` reads as an empty quoted string, then a formula.
        *('gpt;"=1+1;', 'gpt\t"=1+1\t', 'gpt|"@SUM(1+1)|'),
        # A line break inside a quoted cell ends the row when read with another separator, and the
        # next line starts a cell (ledger rows written before manifests refused control characters).
        *("gpt\n=cmd|' /C calc'!A0\nx", "gpt\r\n@SUM(1+1)\r\nx", "gpt;\"\n-2+3+cmd|' /C calc'!A0"),
    ],
)
def test_no_cell_starts_a_formula_whichever_separator_a_spreadsheet_splits_at(acme, model):
    """A model's name is the manifest's free text: read with `,`, `;` (the list separator of many
    locales, which Excel opens a .csv with), tab or `|`, no cell may start a formula (docs/billing.md)."""
    ledger_add(acme, model=model, when=datetime(2026, 1, 5, tzinfo=UTC))
    for response in (
        api(acme, issue(acme)).get("/api/v1/usage/statement", {"month": "2026-01", "format": "csv"}),
        client_for(acme, "viewer@acme.test").get("/usage/statement/", {"month": "2026-01", "format": "csv"}),
    ):
        assert response.status_code == 200
        text = response.content.decode()
        for delimiter in (",", ";", "\t", "|"):
            assert [c for c in _cells(text, delimiter) if c.startswith(FORMULA_START)] == [], delimiter
