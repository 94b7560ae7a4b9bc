"""gunicorn's own log lines — its errors and its access log — as the platform's other lines
(foundry/logs.py): one JSON object a line (FOUNDRY_LOG_FORMAT=json, the default), and never a
secret. An access line is the request's method, its path (an invitation link's token replaced,
`path_for_logs`) and its status, with `status_code`, `duration_ms`, `bytes` and the response's
`request_id`: never the query string (an SSO callback's code, an export link's signature), the
referrer or any header. foundry/gunicorn.conf.py sets it as `logger_class`."""

import logging
import os
import re

from gunicorn import glogging

from foundry.logs import LogContextFilter, path_for_logs

JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s %(tenant)s %(request_id)s"


# A path in a line gunicorn writes about a request it refused or that failed ("Invalid HTTP
# request line: 'GET /sso/callback/?code=… HTTP/1.1'", "Error handling request /x?…"): its query
# string (from the first `?` after a `/`, to the end of its word), and the path itself (for
# path_for_logs). Words found by a pattern that never looks back: one that looked for the `?`
# from every `/` took a second over a request line of 8 KB of slashes.
_WORD = re.compile(r"[^\s'\"]+")
_PATH = re.compile(r"/[^\s'\"]*")


def _query_cut(word: re.Match) -> str:
    text = word.group(0)
    slash = text.find("/")
    mark = text.find("?", slash) if slash >= 0 else -1
    return text[:mark] if mark >= 0 else text


class RequestLineFilter(logging.Filter):
    """gunicorn's error lines with each request path's query string cut and an invitation
    link's token replaced (path_for_logs); the message is written out, its arguments folded in."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _PATH.sub(lambda match: path_for_logs(match.group(0)), _WORD.sub(_query_cut, message))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class Logger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.addFilter(RequestLineFilter())
        if os.environ.get("FOUNDRY_LOG_FORMAT", "json") != "json":
            return
        from pythonjsonlogger.json import JsonFormatter

        formatter = JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"}, timestamp=True)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
                handler.addFilter(LogContextFilter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        status = str(resp.status).split(None, 1)[0]
        headers = dict((name.lower(), value) for name, value in (resp.headers or ()))
        extra = {
            "status_code": int(status) if status.isdigit() else status,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "bytes": getattr(resp, "sent", None),
            "request_id": headers.get("x-request-id"),
        }
        path = path_for_logs(environ.get("PATH_INFO", ""))
        self.access_log.info("%s %s %s", environ.get("REQUEST_METHOD", "-"), path, status, extra=extra)
