import io
import os

import django
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "foundry.settings")

from foundry.process import loaded_freeze
from foundry.telemetry import telemetry_setup


class _TooBig(io.RawIOBase):
    """The input of a chunked body past the limit: any read of it is refused."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise RequestDataTooBig("A request body sent chunked is at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes.")


class Request(WSGIRequest):
    """Django's WSGI request, built whatever charset the Content-Type names. Setting the encoding
    decodes the query string with that codec at once, inside the constructor: `idna` or `rot13`
    raised before any middleware ran, a bare 500 for anyone on any path. The charset is kept as
    named, and RequestCharsetMiddleware refuses it (400 `charset_unsupported`) before anything
    reads the query string.

    A body sent chunked (`Transfer-Encoding: chunked`, no Content-Length: a client streaming a
    body of unknown length) is read too: Django reads Content-Length bytes, none without one, so
    `PUT {"runs_days": 30}` was answered 200 as an empty body. gunicorn ends the server's input at
    the last chunk (wsgi.input_terminated); up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes are read and
    given their length. A longer one is refused (RequestDataTooBig: 413 on the API, 400 on a
    page) whatever reads it, a form's files too: cut short, a multipart form read as empty.
    Send a larger upload with its Content-Length."""

    def __init__(self, environ):
        chunked = environ.get("HTTP_TRANSFER_ENCODING") and environ.get("wsgi.input_terminated")
        if chunked and not environ.get("CONTENT_LENGTH"):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = environ["wsgi.input"].read(limit + 1 if limit is not None else -1)
            stream = _TooBig() if limit is not None and len(body) > limit else io.BytesIO(body)
            environ = {**environ, "CONTENT_LENGTH": str(len(body)), "wsgi.input": stream}
        super().__init__(environ)

    def _set_content_type_params(self, meta):
        try:
            super()._set_content_type_params(meta)
        except (LookupError, UnicodeError, ValueError, SuspiciousOperation):
            self._encoding = self.content_params.get("charset")


class Handler(WSGIHandler):
    request_class = Request


# Before the application loads its middleware (Django's instrumentation adds one); in each
# gunicorn worker, which loads the application after the fork.
telemetry_setup("web")
django.setup(set_prefix=False)  # as get_wsgi_application() does
application = Handler()
loaded_freeze()
