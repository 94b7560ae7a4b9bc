"""gunicorn settings for the web process (WSGI). Why WSGI: docs/operations/serving.md."""

import os

from foundry.switches import switch

bind = os.environ.get("FOUNDRY_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")


def _count(name: str, default: int) -> int:
    """A count of at least 1 (0 workers listen and never answer), else gunicorn stops naming it."""
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        # SystemExit passes gunicorn's `except Exception` around this file: one line, no traceback.
        raise SystemExit(f"{name} must be a whole number of at least 1, not {value[:40]!r}.")
    return int(value)


workers = _count("FOUNDRY_WEB_WORKERS", 2)
threads = _count("FOUNDRY_WEB_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
try:
    accesslog = "-" if switch("FOUNDRY_ACCESS_LOG", default=True) else None  # stdout
except ValueError as exc:  # neither yes nor no: one line, as for the counts
    raise SystemExit(str(exc)) from None
# Its lines as JSON (FOUNDRY_LOG_FORMAT), an access line without query string, referrer or headers.
logger_class = "foundry.gunicorn_logging.Logger"
# The longest request line gunicorn takes (its default is 4094): a list's filter, up to 4,096
# characters, travels percent-encoded in it (docs/api/filtering.md).
limit_request_line = 8190
max_requests = 5000
max_requests_jitter = 500
# gunicorn's control socket lives at one path per user; several servers on one host (tests,
# benchmarks, blue/green) would fight over it, and nothing here uses it.
control_socket_disable = True


def child_exit(server, worker):
    """A worker has ended (recycled after max_requests, timed out, killed): its counter files are
    folded into the archive files (foundry/metrics_fold.py), so the scrape does not read more
    files with every worker that ever ran."""
    from foundry.metrics_fold import metrics_fold_quietly

    metrics_fold_quietly()
