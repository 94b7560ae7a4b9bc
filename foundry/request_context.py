"""The request id: taken from a well-formed `X-Request-ID` header or made up, kept for the
request (a context variable, so code without the request at hand — audit, logs — can read
it), and returned in the response's `X-Request-ID` header."""

import codecs
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("foundry_request_id", default=None)
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
HEADER = "X-Request-ID"


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_for(offered: str | None, *, prefix: str = "") -> str:
    """The id a request is known by: the one it offered when well formed, else a new one."""
    return offered if offered and _WELL_FORMED.fullmatch(offered) else f"{prefix}{uuid.uuid4().hex}"


@contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_for(request.headers.get(HEADER, ""))
        request.request_id = request_id
        with request_id_bound(request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


# What a request's Content-Type may name as its charset (codecs' own names): those no text decoded
# with can hold a lone surrogate.
_CHARSETS = frozenset({"utf-8", "ascii", "iso8859-1"})


class RequestCharsetMiddleware:
    """A request whose Content-Type names another charset is refused (400 `charset_unsupported`)
    before anything reads its query string or form. Django decodes both with any codec named
    there: `unicode_escape` turns the plain ASCII `\\ud800` into a lone surrogate, which no
    password hasher, query or page can encode (a 500, for anyone, on any page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        charset = request.encoding
        if charset is not None and codecs.lookup(charset).name not in _CHARSETS:
            from foundry.errors import error_response

            message = "Send text as UTF-8: the charset this request names is not accepted."
            return error_response(request, status=400, code="charset_unsupported", message=message)
        return self.get_response(request)
