"""/mcp over plain HTTP while FOUNDRY_SSL_REDIRECT is on (production, docs/operations/deployment.md):
sent to HTTPS as Django sends the console and the API (a 308 keeps the method and the body), before
anything is read or authenticated; it was served, so a client configured with an http:// address
went on working, its token in the clear. Behind a TLS proxy its X-Forwarded-Proto counts."""

import importlib
import json
import sys

import pytest

from tests.asgi_calls import asgi_post
from tests.mcp.conftest import workspace_make

BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()


@pytest.fixture(scope="module")
def viewer(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return workspace_make()


def _post(ws, django_db_blocker, *extra):
    """One POST through a fresh foundry.asgi (the SDK's session manager runs once per instance)."""
    headers = [(b"mcp-protocol-version", b"2025-06-18"), (b"authorization", f"Bearer {ws.tokens['viewer']}".encode())]
    saved = sys.modules.pop("foundry.asgi", None)
    try:
        module = importlib.import_module("foundry.asgi")
        with django_db_blocker.unblock():
            return asgi_post(
                module.application,
                f"{ws.slug}.localhost",
                BODY,
                [*headers, *extra],
                session_manager=module.mcp.session_manager,
            )
    finally:
        sys.modules.pop("foundry.asgi", None)
        if saved is not None:
            sys.modules["foundry.asgi"] = saved


def test_plain_http_is_sent_to_https_while_the_redirect_is_on(viewer, django_db_blocker, settings):
    settings.SECURE_SSL_REDIRECT = True
    answer = _post(viewer, django_db_blocker)
    assert answer.status == 308
    assert answer.headers["location"] == f"https://{viewer.slug}.localhost/mcp"
    assert json.loads(answer.body)["error"]["code"] == "https_required"


def test_a_request_the_tls_proxy_forwards_is_served(viewer, django_db_blocker, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    answer = _post(viewer, django_db_blocker, (b"x-forwarded-proto", b"https"))
    assert answer.status == 200, answer.body[:200]


def test_plain_http_is_served_while_the_redirect_is_off(viewer, django_db_blocker, settings):
    settings.SECURE_SSL_REDIRECT = False
    assert _post(viewer, django_db_blocker).status == 200
