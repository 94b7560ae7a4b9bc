"""`?format=` on API resources that have no such parameter (DRF's URL_FORMAT_OVERRIDE): a 406."""

import pytest

from tests.api.conftest import api, issue


@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/workspace", "/api/v1/agents"])
def test_an_unknown_format_is_not_answered_as_a_missing_resource(acme, path):
    """An unmet format is `not_acceptable` (406), as an unmet Accept is: DRF answered 404
    `not_found`, the code the docs give for "no such object in this workspace"."""
    client = api(acme, issue(acme, role="owner"))
    assert client.get(path).status_code == 200
    response = client.get(path + "?format=csv")
    assert (response.status_code, response.json()["error"]["code"]) == (406, "not_acceptable")
