"""docs/observability.md: `postgres`, "a new connection to DATABASE_URL answers `SELECT 1` within
2 s": the query is bounded too, not only the connection: a PostgreSQL that accepts the connection
and then stops answering (frozen, a stuck pooler) is `down` in time, and holds no probe for ever."""

import contextlib
import socket
import struct
import threading
import time
import types

from foundry import health


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _stalling_postgres(listener: socket.socket, conns: list) -> None:
    """Completes the startup handshake (trust auth), then never answers a query."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    conns.append(conn)
    while True:
        length = struct.unpack("!I", conn.recv(4))[0]
        body = conn.recv(length - 4)
        code = struct.unpack("!I", body[:4])[0]
        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
            conn.sendall(b"N")
            continue
        break
    out = _message(b"R", struct.pack("!I", 0))
    for name, value in (
        ("server_version", "15.0"),
        ("client_encoding", "UTF8"),
        ("standard_conforming_strings", "on"),
        ("integer_datetimes", "on"),
        ("DateStyle", "ISO, MDY"),
    ):
        out += _message(b"S", name.encode() + b"\0" + value.encode() + b"\0")
    out += _message(b"K", struct.pack("!II", 1, 2))
    out += _message(b"Z", b"I")
    conn.sendall(out)
    # Read the query and answer nothing.
    with contextlib.suppress(OSError):
        conn.recv(65536)


def test_readyz_postgres_check_answers_within_2_seconds_when_server_stalls(monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    conns: list = []
    server = threading.Thread(target=_stalling_postgres, args=(listener, conns), daemon=True)
    server.start()
    fake = types.SimpleNamespace(
        DATABASES={"default": {"HOST": "127.0.0.1", "PORT": port, "NAME": "x", "USER": "x", "PASSWORD": "x"}}
    )
    monkeypatch.setattr(health, "settings", fake)

    outcome = {}

    def check():
        started = time.monotonic()
        try:
            health._check_postgres()
            outcome["result"] = "up"
        except Exception as exc:  # noqa: BLE001
            outcome["result"] = type(exc).__name__
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(timeout=6)
    hung = worker.is_alive()
    for conn in conns:
        conn.close()
    listener.close()
    worker.join(timeout=5)
    assert not hung, "the postgres readiness check was still waiting for SELECT 1 after 6 s (documented: 2 s)"
    assert outcome["result"] != "up"
    assert outcome["seconds"] < 3
