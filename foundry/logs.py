"""Log records that say where they come from: `LogContextFilter`, on the console handler
(settings.LOGGING), gives every record the current trace and span ids, the tenant and the request
id, so a JSON log line can be joined to its trace, its workspace and its request.

The same filter serves web and worker processes: the request id is bound by
foundry/request_context.py, the tenant by `foundry.telemetry.tenant_bound` (the tenant router for
a request, TenantTask for a task), the span by OpenTelemetry. Outside all of them the fields are
null. Celery workers keep this handler because settings.py stops Celery from replacing the root
logger's handlers (CELERY_WORKER_HIJACK_ROOT_LOGGER).

Django logs a 4xx/5xx response it was handed (a view's 400, 403 or 404 returned rather than
raised) only once every middleware has returned, when the request id, the tenant and the span
are no longer bound; `ErrorResponseLogMiddleware` logs it first.
"""

import logging
import re
from contextlib import nullcontext

from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response
from opentelemetry import trace

from foundry.request_context import current_request_id
from foundry.telemetry import current_tenant, tenant_bound

# Paths that carry a secret in themselves: an invitation link's token (apps/accounts/urls.py).
# An invitation link's token, in a path or anywhere in a message: wherever an `invite` segment
# is, whatever slashes doubled on the way (`//invite/<uid>/<token>/` is a 404, logged) or its case.
# Linear in the text: a match starts only at a run of slashes' first, and no run is given back
# (a path of 12,000 slashes was tried from each one, back over each: seconds of CPU per 404).
_SECRET_IN_TEXT = re.compile(r"((?<!/)/++invite/++[^/\s]++/++)[^/\s]+", re.IGNORECASE)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def path_for_logs(path: str) -> str:
    """A request's path as log lines show it: an invitation link's token replaced by `…` (the
    query string, which may hold an SSO callback's code, is never logged at all), and control
    characters escaped (`%0A` in a path wrote a second, forged line in text logs; `\\x1b` moved
    the terminal's cursor)."""
    path = _SECRET_IN_TEXT.sub(r"\1…", path or "")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", path)


class LogContextFilter(logging.Filter):
    """Adds `trace_id`, `span_id` (lowercase hex, when a valid span is current), `tenant` (slug)
    and `request_id` to every record; never drops one. The request Django attaches to its own
    records (`django.request`, `django.security`) becomes its method and path: printed whole, it
    carried the query string (an SSO callback's code, a token in the address)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = f"{getattr(request, 'method', '')} {path_for_logs(getattr(request, 'path', ''))}".strip()
        # Django's own lines name the path in their text too ("Internal Server Error: %s",
        # "Forbidden (CSRF cookie not set.): %s"): an invitation link's token goes there as well.
        if isinstance(record.msg, str) and "invite/" in record.msg.lower():
            record.msg = _SECRET_IN_TEXT.sub(r"\1…", record.msg)
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "invite/" in a.lower() for a in record.args):
            record.args = tuple(_SECRET_IN_TEXT.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        else:
            record.trace_id = record.span_id = None
        tenant = current_tenant()
        record.tenant = tenant[1] if tenant is not None else None
        record.request_id = getattr(record, "request_id", None) or current_request_id()
        return True


class ErrorResponseLogMiddleware:
    """Logs a response of status 400 and above as Django would (`django.request`, once), before
    the request id and the span are unbound: placed right after RequestIdMiddleware, outside the
    tenant router, so an unknown host's 404 is logged too; the request's tenant, unbound by then,
    is bound again for the line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400:
            tenant = getattr(request, "tenant", None)
            # The request's server span (foundry/telemetry.py) has ended by now: current again for
            # the line, so it carries the span's trace and span ids.
            span = getattr(request, "server_span", None)
            spanned = trace.use_span(span, end_on_exit=False) if span is not None else nullcontext()
            with tenant_bound(getattr(tenant, "pk", None), getattr(tenant, "slug", None)), spanned:
                path = path_for_logs(request.path)
                log_response("%s: %s", response.reason_phrase, path, response=response, request=request)
        return response
