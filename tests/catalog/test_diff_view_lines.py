"""The console's text diff colours each line of the unified diff by its first character, one
row per line text_diff wrote (split at "\\n", as git does): a source line holding another YAML
line break (a CR, NEL, U+2028/U+2029) is one row, so an added field after one shows as added,
not as unchanged context — on the diff page and on the rollback confirmation alike."""

import pytest

from tests.catalog.conftest import example, publish
from tests.conftest import client_for

FINANCE = example("domains/finance.yaml")
ONBOARDED = "        onboarded_on: {type: date}\n"
# v2 adds vendor.rating on the same "\n"-line as onboarded_on, after a CR (a YAML line break).
SNEAKY = FINANCE.replace(ONBOARDED, ONBOARDED[:-1] + "\r        rating: {type: integer}\n")


@pytest.fixture
def two_versions(acme):
    publish(acme, FINANCE)
    v2 = publish(acme, SNEAKY, message="Reformat").version
    assert v2.number == 2 and "rating" in v2.content["spec"]["entities"]["vendor"]["fields"]
    return v2


def _rows_match_the_unified_diff(response, rating_css):
    diff = response.context["diff"]
    rows = response.context["diff_lines"]
    # The line that brings (or takes away) vendor.rating is shown as added (removed), not as context.
    shown = [css for css, line in rows if "rating" in line]
    assert shown == [rating_css], [(css, line) for css, line in rows if "rating" in line]
    # Each row of the page is one line of the unified diff, as text_diff wrote it.
    assert len(rows) == diff.text.count("\n")


def test_the_diff_page_shows_an_added_field_as_added_not_as_context(acme, two_versions):
    response = client_for(acme, "viewer@acme.test").get("/domains/finance/diff/?from=1&to=2")
    assert response.status_code == 200
    _rows_match_the_unified_diff(response, "add")


def test_the_rollback_confirmation_shows_what_the_rollback_removes_as_removed(acme, two_versions):
    response = client_for(acme, "developer@acme.test").get("/domains/finance/rollback/1/")
    assert response.status_code == 200
    _rows_match_the_unified_diff(response, "del")
