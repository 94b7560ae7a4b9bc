"""The request id: taken from a well-formed `X-Request-ID` header or made up, kept for the
request (a context variable, so code without the request at hand — audit, logs — can read
it), and returned in the response's `X-Request-ID` header."""

import re
import uuid
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("foundry_request_id", default=None)
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
HEADER = "X-Request-ID"


def current_request_id() -> str | None:
    return _request_id.get()


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(HEADER, "")
        request_id = offered if _WELL_FORMED.fullmatch(offered) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response[HEADER] = request_id
        return response
