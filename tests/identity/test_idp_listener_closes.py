"""Order robustness: a test's helper server must be gone when the test is over."""

import socket
import time

from tests.identity.test_idp_transport import Listener


def test_a_closed_idp_transport_listener_stops_listening_and_its_thread_ends():
    """tests/identity/test_idp_transport.py's `Listener`, closed, listens no more and its thread
    ends: closing the socket alone woke no accept() blocked in it on Linux, and the port went on
    answering with a fake token response for the rest of the xdist worker's life."""
    listener = Listener()
    time.sleep(0.1)  # the thread is in accept()
    listener.close()
    listener.thread.join(timeout=2)
    # Its own thread: another test's helper in this worker may be accepting meanwhile, by design.
    leaked = [listener.thread.name] if listener.thread.is_alive() else []
    try:
        socket.create_connection(("127.0.0.1", listener.port), timeout=1).close()
        still_listening = True
    except OSError:
        still_listening = False
    assert not still_listening and not leaked, (
        f"after close(): port {listener.port} still accepts={still_listening}, threads left={leaked}"
    )
