"""Scrubbing a path or a request line for the logs costs time linear in its length: an anonymous
request for a path of thousands of slashes is answered as fast as any 404."""

import time

from django.test import Client


def test_404_with_long_run_of_slashes_is_answered_fast(acme):
    """Every response of 400 or more is logged with its path (path_for_logs); a path of 12,000
    slashes took seconds there, unauthenticated and before any rate limit."""
    client = Client(HTTP_HOST="acme.localhost")
    client.get("/warm-up")  # first request pays for imports and URL resolver setup

    started = time.perf_counter()
    letters = client.get("/" + "a" * 12_000)
    letters_elapsed = time.perf_counter() - started
    assert letters.status_code == 404

    started = time.perf_counter()
    slashes = client.get("/" * 12_000)
    slashes_elapsed = time.perf_counter() - started
    assert slashes.status_code == 404
    assert slashes_elapsed < 1.0, (slashes_elapsed, letters_elapsed)


def test_a_request_line_of_slashes_is_scrubbed_fast():
    """gunicorn's lines about a request it refused go through the same scrubbing (its query string
    cut): 8 KB of slashes, the longest request line it reads, took a second."""
    import logging

    from foundry.gunicorn_logging import RequestLineFilter

    record = logging.LogRecord("gunicorn.error", logging.INFO, "", 0, "Invalid request line: '%s'", ("/" * 8190,), None)
    started = time.perf_counter()
    RequestLineFilter().filter(record)
    assert time.perf_counter() - started < 0.5
    cut = logging.LogRecord("gunicorn.error", logging.INFO, "", 0, "GET /sso/callback/?code=abc HTTP/1.1", (), None)
    RequestLineFilter().filter(cut)
    assert cut.getMessage() == "GET /sso/callback/ HTTP/1.1"
