"""List endpoints and what a request may ask of them: wildcards of many stars, parameters given twice."""

import pytest

from tests.api.conftest import api, issue


def _client(tenant):
    client = api(tenant, issue(tenant))
    client.raise_request_exception = False  # see the 500 the caller would see, not the traceback
    return client


@pytest.mark.django_db
def test_a_wildcard_of_many_stars_is_no_server_error(acme):
    """`name = "***…*"` (2,000 stars, within the 4,096-character limit) is `name = "*"`: PostgreSQL
    refuses 2,000 `.*` in a row as too complex, which was a 500."""
    response = _client(acme).get("/api/v1/tokens", {"filter": 'name = "' + "*" * 2000 + '"'})
    assert response.status_code == 200, response.content[:300]


def test_stars_in_a_row_are_one_star_in_the_sql_the_filter_becomes():
    """PostgreSQL takes seconds to compile hundreds of `.*` in a row (41 s for 1,000 stars on a
    one-row table: any reader of a list could hold the database with one request): the filter's
    SQL regex has one `.*` where the filter has stars in a row, and matches as before."""
    from foundry.filtering.compiler import _wildcard
    from foundry.filtering.parser import Literal

    text = "a" + "*" * 700 + "b**c"
    regex, matches = _wildcard(Literal(text, True, 0, tuple(i for i, ch in enumerate(text) if ch == "*")))
    assert regex == "^a.*b.*c$"
    assert matches("aXbYc") and matches("abc") and not matches("acb")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["page_size=1&page_size=1000", "filter=name%20%3D%20nothing-such&filter=", "order_by=name&order_by=created_at"],
)
def test_a_list_parameter_given_twice_is_refused(acme, query):
    """`?page_size=1&page_size=1000` or `?filter=<x>&filter=` is refused (400 `repeated_parameter`),
    as the API's other query-string readers refuse a repeat, rather than the last value taken
    (up to 1,000 rows served, or the list unfiltered)."""
    response = _client(acme).get("/api/v1/tokens?" + query)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "repeated_parameter"
