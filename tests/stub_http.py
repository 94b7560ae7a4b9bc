"""The tests' stub servers."""

import sys
from http.server import ThreadingHTTPServer


class QuietOnHangUp:
    """A socketserver mixin, quiet when a client hangs up.

    A client that goes away mid-exchange or mid-handshake (the size and time bounds under test, a
    test that is done) is a stub's everyday case: socketserver's `handle_error` would print a
    traceback for it into the run's output. Any other error in a handler (a bug) is still printed."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exception(), OSError):
            return
        super().handle_error(request, client_address)


class StubHTTPServer(QuietOnHangUp, ThreadingHTTPServer):
    """A threaded HTTP server for a test's stub."""

    daemon_threads = True
