"""The OpenAPI document and its interactive docs (foundry/api/schema.py, foundry/urls_api.py):
what anyone may send them, anonymous, cannot change or grow what the process keeps, nor make
them fail."""

import pytest

from foundry.api import schema as schema_module
from tests.api.conftest import api


@pytest.fixture
def fresh_cache(monkeypatch):
    """A process whose schema cache is empty (as after a restart)."""
    monkeypatch.setattr(schema_module, "_RENDERED", {})


@pytest.mark.parametrize("accept", ["application/json", "application/vnd.oai.openapi"])
def test_an_anonymous_options_request_does_not_replace_the_openapi_document(acme, globex, fresh_cache, accept):
    """Only a GET's document is kept: the DRF metadata an OPTIONS answers ({"name": "Schema", ...})
    was kept as the document every later GET of that media type was served, on every workspace."""
    anon = api(acme)
    options = anon.options("/api/schema/", HTTP_ACCEPT=accept)
    assert options.status_code == 200
    for tenant in (acme, globex):
        got = api(tenant).get("/api/schema/", HTTP_ACCEPT=accept)
        assert got.status_code == 200
        assert b"openapi" in got.content[:200] and b"/api/v1/runs" in got.content, got.content[:200]


def test_options_on_the_api_docs_page_is_not_a_server_error(acme):
    """OPTIONS /api/docs/ rendered DRF's metadata with the page's HTML renderer and no template."""
    client = api(acme)
    client.raise_request_exception = False
    for accept in ("*/*", "text/html"):
        response = client.options("/api/docs/", HTTP_ACCEPT=accept)
        assert response.status_code < 500, (accept, response.status_code)


def test_accept_parameters_do_not_grow_the_schema_cache_without_bound(acme, fresh_cache):
    """Kept by the renderer's media type, not the client's Accept with its parameters: every
    `Accept: application/json; x=<anything>` rendered the document again (~70 ms of CPU) and
    kept another copy of it (~0.5 MB) in the process for ever."""
    anon = api(acme)
    for n in range(20):
        response = anon.get("/api/schema/", HTTP_ACCEPT=f"application/json; nonce={n}")
        assert response.status_code in (200, 406)
    assert len(schema_module._RENDERED) <= 3, sorted(schema_module._RENDERED)
