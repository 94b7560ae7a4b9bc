"""foundry/asgi.py serves the same app as foundry/wsgi.py, under a real uvicorn."""

import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import free_port, server_env, server_process


def _get(port: int, path: str, host: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def uvicorn_port(django_db_setup):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "foundry.asgi:application",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
    ]
    with server_process(command, port=port, env=server_env()):
        yield port


def test_the_asgi_app_routes_tenants_like_the_wsgi_app(uvicorn_port):
    assert _get(uvicorn_port, "/healthz", "10.1.2.3") == (200, b'{"status": "ok"}')
    status, body = _get(uvicorn_port, "/login/", "acme.localhost")
    assert status == 200 and b"Sign in to Acme Corporation" in body
    status, body = _get(uvicorn_port, "/login/", "globex.localhost")
    assert status == 200 and b"Sign in to Globex" in body
    status, body = _get(uvicorn_port, "/login/", "nope.localhost")
    assert status == 404 and b"unknown_host" in body
