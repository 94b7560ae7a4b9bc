"""The operator console's tenant search on odd input."""

from tests.conftest import client_for


def test_tenant_search_with_a_nul_byte_is_not_a_500(db):
    """A NUL byte in the search (which PostgreSQL text cannot hold) is dropped, not a 500."""
    client = client_for(None, "operator@platform.test")
    client.raise_request_exception = False
    response = client.get("/", {"q": "ac\x00me"})
    assert response.status_code in (200, 400), response.status_code
