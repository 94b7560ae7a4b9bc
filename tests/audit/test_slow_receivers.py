"""A webhook receiver that trickles its answer holds a delivery attempt for as long as it likes.

delivery.py bounds one attempt by 3 x IO_TIMEOUT (connect, write, wait for the answer): the
Redis lock of a run (`sink_deliver`: budget + (retries + 1) x 3 x IO_TIMEOUT + ... + 30 s) and the
run's 60 s budget are computed from it. But the webhook POST has only httpx's per-operation
timeouts: a byte every few seconds restarts the read clock, so a receiver (or anything on the
path) keeps a worker of the shared Celery queue busy for hours (h11 allows 16 KiB of header), the
sink's lock expires under it, and the next beat starts a second worker on the same sink.
(The syslog path is bounded: sendall, the TLS handshake and unwrap have a total deadline, and
_confirm checks its deadline between reads.)"""

import ipaddress
import socket
import threading
import time

from apps.audit.delivery import DeliveryError, webhook_send
from apps.audit.models import AuditSink
from foundry.runtime.network import NetworkPolicy
from tests.audit.test_delivery import self_signed

POLICY = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
TIMEOUT = 0.5  # the attempt's I/O timeout (IO_TIMEOUT in production: 10 s)
BOUND = 3 * TIMEOUT + 1.0  # what delivery.py assumes of one attempt, plus slack
TRICKLE_FOR = 8.0  # seconds the receiver keeps trickling
STEP = 0.2  # a byte every STEP seconds: each read succeeds well within TIMEOUT


class Trickler:
    """A TCP listener on 127.0.0.1; `serve(conn)` runs for each connection in a thread."""

    def __init__(self, serve):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.serve(conn, self.stopped)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopped.set()
        self.sock.close()


def trickle(conn, data: bytes, stopped: threading.Event) -> None:
    deadline = time.monotonic() + TRICKLE_FOR
    while time.monotonic() < deadline and not stopped.is_set():
        conn.sendall(data)
        time.sleep(STEP)


def attempt(send) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        send()
        error = None
    except DeliveryError as exc:
        error = exc
    return time.monotonic() - started, error


def test_a_webhook_that_trickles_its_answer_does_not_hold_the_attempt_beyond_its_bound(tmp_path):
    pem, context = self_signed(tmp_path)

    def serve(raw, stopped):
        conn = context.wrap_socket(raw, server_side=True)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(65536)
        head, _, body = request.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Trickle: ")
        trickle(conn, b"a", stopped)
        conn.sendall(b"\r\n\r\n")

    receiver = Trickler(serve)
    try:
        sink = AuditSink(
            tenant_id=1, name="hook", kind="webhook", url=f"https://127.0.0.1:{receiver.port}/in", ca_certificate=pem
        )
        elapsed, error = attempt(lambda: webhook_send(sink, b'{"events":[]}', POLICY, timeout=TIMEOUT))
    finally:
        receiver.stop()
    assert elapsed < BOUND, (
        f"one POST took {elapsed:.1f} s with a {TIMEOUT} s timeout (bound {BOUND} s); error: {error}"
    )
    assert error is not None and error.code == "webhook_failed"
