"""gunicorn's access line (foundry/gunicorn_logging.py `Logger.access`) shows the request's path
as the WSGI server decoded it (PATH_INFO: `%0A` is a newline) with its control characters
escaped: in FOUNDRY_LOG_FORMAT=text one request cannot write a second, forged line, nor move a
terminal's cursor (as Django's own `django.request` lines escape the path)."""

import datetime
import io
import logging

import pytest
from gunicorn.config import Config

from foundry.gunicorn_logging import Logger


class _Response:
    status = "404 Not Found"
    headers = [("X-Request-ID", "0123456789abcdef")]
    sent = 10


@pytest.fixture
def text_logger(monkeypatch):
    monkeypatch.setenv("FOUNDRY_LOG_FORMAT", "text")
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = Logger(cfg)
    out = io.StringIO()
    formatter = logger.access_log.handlers[-1].formatter
    capture = logging.StreamHandler(out)
    capture.setFormatter(formatter)
    # gunicorn.access is a process-wide logger: its handlers come back after the test.
    monkeypatch.setattr(logger.access_log, "handlers", [capture])
    return logger, out


def test_a_newline_in_the_path_does_not_forge_an_access_line(text_logger):
    logger, out = text_logger
    forged = "/api/v1/runs/x\n[2026-12-01 16:21:09 +0000] ERROR admin@acme.test signed in from 10.0.0.1 \x1b[2K"
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": forged}
    logger.access(_Response(), None, environ, datetime.timedelta(milliseconds=3))
    written = out.getvalue()
    assert written.count("\n") == 1 and written.endswith("\n"), f"one request wrote several lines: {written!r}"
    assert "\x1b" not in written, f"a terminal control sequence reached the log: {written!r}"
