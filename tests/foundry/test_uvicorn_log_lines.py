"""docs/observability.md "Logs": "Every process — gunicorn, uvicorn, Celery workers and beat —
writes one JSON object per line". uvicorn (the `mcp` service, `bin/dev up`) installs text
handlers of its own before the application loads; LOGGING gives its loggers the platform's
handler, so its startup and shutdown lines and an "Exception in ASGI application" are JSON too —
and `--no-access-log` still holds: an access line carries the query string (tokens, an SSO
callback's code), which is never logged. Runs uvicorn as docs/operations/deployment.md does and
reads what it wrote."""

import json
import re
import shlex
import sys
import urllib.request

import pytest

from tests.conftest import ROOT, free_port, server_env, server_process

SECRET = "s3cr3t-code-in-the-query"


def _documented(path: str, first: str) -> list[str]:
    """The uvicorn command a document gives, from the line holding `first`."""
    line = next(line for line in (ROOT / path).read_text().splitlines() if first in line)
    return shlex.split(re.search(r"`(uvicorn [^`]+)`", line).group(1))


def test_the_documented_uvicorn_commands_leave_its_access_log_off():
    """They left it on: every /mcp request's query string went to the log as a text line."""
    assert "--no-access-log" in _documented("docs/operations/deployment.md", "| mcp |")
    assert "--no-access-log" in _documented("docs/operations/serving.md", "- uvicorn:")


@pytest.mark.parametrize("flag", [["--no-access-log"], []], ids=["as-documented", "flag-forgotten"])
def test_every_line_uvicorn_writes_is_json(django_db_setup, tmp_path, flag):
    """Also with `--no-access-log` forgotten: LOGGING gives uvicorn.access no handler."""
    port = free_port()
    # The production settings (tests.settings prints text): only the log format matters here.
    env = server_env(DJANGO_SETTINGS_MODULE="foundry.settings", FOUNDRY_LOG_FORMAT="json")
    log = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "foundry.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--lifespan", "on", *flag]
    with server_process(command, port=port, env=env, log=log) as proc:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz?code={SECRET}&state=x", timeout=5).read()
    assert proc.returncode is not None
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "uvicorn wrote something"
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, f"uvicorn wrote lines that are not JSON: {not_json}"
    assert not [line for line in lines if "uvicorn.access" in line or SECRET in line]
