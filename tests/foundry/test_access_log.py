"""The web server's own log lines (foundry/gunicorn_logging.py): JSON like every other line, and an
access line is the method, the path (an invitation link's token replaced) and the status —
never the query string (an SSO callback's one-time code, an export link's signature)."""

import json
import socket
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, free_port, server_env, server_process

CODE = "oidc-code-5e1d2c3b4a69788f0e1d2c3b"
SIGNATURE = "eyJleHBvcnQiOjd9:1tXyZa:SiGnAtUrE0123456789abcdefXYZ"
INVITE_TOKEN = "cb4rqz-0123456789abcdef0123456789abcdef"


def _get(port: int, path: str, host: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def gunicorn_log(fresh_tenant):
    """gunicorn as deployed (foundry/gunicorn.conf.py, its defaults; JSON logs, the default)."""
    port = free_port()
    log = ROOT / "test-artifacts" / f"access-log-gunicorn-{port}.log"
    log.parent.mkdir(exist_ok=True)
    env = server_env(FOUNDRY_BIND=f"127.0.0.1:{port}", FOUNDRY_WEB_WORKERS="1", FOUNDRY_LOG_FORMAT="json")
    env.pop("FOUNDRY_ACCESS_LOG", None)
    command = [sys.executable, "-m", "gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
    host = f"{fresh_tenant.slug}.localhost"
    with server_process(command, port=port, env=env, log=log):
        _get(port, f"/sso/callback/?code={CODE}&state=s1", host)
        _get(port, f"/settings/data-export/1/download/?signature={SIGNATURE}", host)
        _get(port, f"/invite/MQ/{INVITE_TOKEN}/", host)
        # A request line gunicorn refuses while parsing it (one raw UTF-8 byte in the query): its
        # error line quotes the request line, without the query (foundry/gunicorn_logging.py).
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /sso/callback/?code={CODE}&state=Jos\u00e9 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    return log.read_text(errors="replace")


def test_the_access_log_does_not_carry_sso_codes_export_signatures_or_invitation_tokens(gunicorn_log):
    """The one-time OIDC code, the export link's signature and the invitation link's token are
    bearer secrets: none reaches the server's log, its error line about a refused request line
    included."""
    leaked = [line for line in gunicorn_log.splitlines() if CODE in line or SIGNATURE in line or INVITE_TOKEN in line]
    assert not leaked, "secrets reached the web server's log:\n" + "\n".join(leaked)


def test_access_lines_are_json_with_the_request_id_and_the_path_without_its_secret(gunicorn_log):
    lines = [json.loads(line) for line in gunicorn_log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "gunicorn.access"]
    paths = [line["message"].split()[1] for line in access]  # also the readiness probe's, a redirect's
    assert {"/sso/callback/", "/settings/data-export/1/download/", "/invite/MQ/…/"} <= set(paths), paths
    assert all(line["request_id"] and isinstance(line["status_code"], int) for line in access)
    assert not [line for line in gunicorn_log.splitlines() if "[INFO]" in line], "gunicorn's own lines are JSON too"
