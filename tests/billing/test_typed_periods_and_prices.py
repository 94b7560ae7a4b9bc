"""Statement months and prices as people type them: a month with a trailing newline or in
non-ASCII digits is period_invalid (a newline reached the download's file name: a 500); a price
moment with an offset PostgreSQL cannot store is taken to UTC; a price with more than 6 decimals
is refused, not rounded (to 0 at worst)."""

from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from apps.billing.models import Price
from tests.api.conftest import api, issue
from tests.billing.test_rollups import ledger_add
from tests.conftest import client_for


@pytest.fixture
def january(acme):
    ledger_add(acme, when=datetime(2026, 1, 5, tzinfo=UTC))


def test_api_csv_statement_month_with_trailing_newline_is_a_400(acme, january):
    response = api(acme, issue(acme)).get("/api/v1/usage/statement", {"month": "2026-01\n", "format": "csv"})
    assert response.status_code == 400, response.status_code
    assert response.json()["error"]["code"] == "period_invalid"


def test_console_statement_month_with_trailing_newline_is_a_400(acme, january):
    response = client_for(acme, "viewer@acme.test").get("/usage/statement/", {"month": "2026-01\n"})
    assert response.status_code == 400, response.status_code


def test_api_statement_month_in_fullwidth_digits_is_period_invalid(acme, january):
    response = api(acme, issue(acme)).get("/api/v1/usage/statement", {"month": "\uff12\uff10\uff12\uff16-01"})
    assert response.status_code == 400, (response.status_code, response.content[:200])
    assert response.json()["error"]["code"] == "period_invalid"


@pytest.mark.parametrize("moment", ["2030-01-01T00:00:00+23:59", "2030-01-01T00:00:00-16:00"])
def test_set_price_with_a_large_utc_offset_is_refused_or_stored_in_utc(db, moment):
    try:
        call_command("set_price", "openai", "rv-model", "--input", "1", "--output", "2", "--from", moment)
    except CommandError:
        return  # a clear refusal is acceptable
    stored = Price.objects.get(provider="openai", model="rv-model").effective_from
    assert stored == datetime.fromisoformat(moment)


def test_a_price_with_more_than_six_decimals_is_refused_not_rounded_to_zero(operator_client):
    fields = {"provider": "openai", "model": "rv-tiny", "input_per_mtok": "0.0000004", "output_per_mtok": "1",
              "cached_per_mtok": "0", "effective_from": ""}  # fmt: skip
    response = operator_client.post("/prices/new/", fields)
    written = list(Price.objects.filter(model="rv-tiny").values_list("input_per_mtok", flat=True))
    assert response.status_code == 400 and written == [], (response.status_code, written)
