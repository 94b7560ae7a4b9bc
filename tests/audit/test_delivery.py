"""Push delivery to SIEM sinks, against real receivers in the test: a syslog TCP listener (plain
and TLS) that reads RFC 6587 frames one at a time, and an HTTPS webhook receiver. Receiver
restarts lose nothing and resend no more than the batch in flight; webhooks are retried and
signed; TLS is verified; destinations are checked; one tenant's sink sees only its own chain.
The sinks API and console page: access, bad input, audit records, secrets never shown."""

import datetime as dt
import hashlib
import hmac
import http.server
import ipaddress
import json
import logging
import re
import signal
import socket
import socketserver
import ssl
import threading
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError
from django_redis import get_redis_connection
from django_tenants.utils import schema_context

from apps.audit import delivery
from apps.audit.delivery import (
    SinkFields,
    audit_sink_get,
    audit_sink_set,
    sink_deliver,
    sinks_due,
)
from apps.audit.export import chain_head
from apps.audit.models import AuditEvent, AuditSink
from apps.audit.scope import rls_scope
from apps.audit.services import audit_record
from apps.audit.tasks import audit_deliver_sinks
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_http_networks_set
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for, tenant_user
from tests.stub_http import QuietOnHangUp, StubHTTPServer

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
FRAME = re.compile(
    rb"^<(\d+)>1 (\S+) (\S+) agent-foundry - (\S+) \[foundry@32473 id=\"([^\"]+)\" [^\]]*\] \xef\xbb\xbf"
)

# --- receivers --------------------------------------------------------------------------------


def self_signed(tmp_path, names=None) -> tuple[str, ssl.SSLContext]:
    """A certificate for `names` (x509 general names; localhost and 127.0.0.1 by default), its own
    CA: its PEM, and a server context."""
    names = names or [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (tmp_path / "cert.pem").write_text(pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return pem, context


class _SyslogServer(QuietOnHangUp, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def verify_request(self, request, client_address) -> bool:
        return not self.receiver.crashed.is_set()


class _SyslogHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        receiver: SyslogReceiver = self.server.receiver
        sock = self.request
        if receiver.tls is not None:
            try:
                sock = receiver.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return
        try:
            while (message := _read_frame(sock)) is not None:
                if not receiver.take(message):
                    return  # crashed: the socket closes with whatever is still unread
        except OSError:
            return
        finally:
            sock.close()


def _read_frame(sock) -> bytes | None:
    """One octet-counted frame, reading no byte beyond it (a crash leaves the rest unread)."""
    length = b""
    while (byte := sock.recv(1)) != b" ":
        if not byte:
            return None
        length += byte
    size, data = int(length), b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class SyslogReceiver:
    """A syslog receiver on 127.0.0.1 that keeps every message; with `crash_after`, it dies after
    that many messages (its connection and listening socket close, unread bytes and all)."""

    def __init__(self, port: int = 0, *, crash_after: int | None = None, tls: ssl.SSLContext | None = None):
        self.messages: list[bytes] = []
        self.crash_after = crash_after
        self.crashed = threading.Event()
        self.tls = tls
        self.lock = threading.Lock()
        self.server = _SyslogServer(("127.0.0.1", port), _SyslogHandler)
        self.server.receiver = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def take(self, message: bytes) -> bool:
        with self.lock:
            if self.crashed.is_set():
                return False
            self.messages.append(message)
            if self.crash_after is not None and len(self.messages) >= self.crash_after:
                self.crashed.set()
                threading.Thread(target=self.stop, daemon=True).start()
                return False
        return True

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def ids(self) -> list[str]:
        return [FRAME.match(m).group(5).decode() for m in self.messages]

    def records(self) -> list[dict]:
        return [json.loads(m.split(b"\xef\xbb\xbf", 1)[1]) for m in self.messages]


class WebhookReceiver:
    """An HTTPS endpoint on 127.0.0.1 that answers `statuses` in turn (then 200) and keeps each POST;
    with `max_body`, a larger body is answered 413 (and not kept)."""

    def __init__(self, tls: ssl.SSLContext, statuses=(), max_body: int | None = None):
        self.posts: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        self.refused = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if max_body is not None and len(body) > max_body:
                    receiver.refused += 1
                    status = 413
                else:
                    receiver.posts.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = StubHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/ingest?source=foundry"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def ids(self) -> list[list[str]]:
        return [[e["id"] for e in json.loads(body)["events"]] for _, body in self.posts]


@pytest.fixture
def loopback_allowed(settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK


@pytest.fixture
def receiver():
    receivers = []

    def start(*args, **kwargs):
        receivers.append(SyslogReceiver(*args, **kwargs))
        return receivers[-1]

    yield start
    for r in receivers:
        r.stop()


def syslog_sink(tenant, port: int, *, name="siem", tls=False, **extra) -> AuditSink:
    fields = SinkFields(kind="syslog", host="127.0.0.1", port=port, tls=tls, **extra)
    return audit_sink_set(tenant=tenant, name=name, fields=fields, actor="test")


def chain_ids(tenant, start: int = 1) -> list[str]:
    """The ids of the chain's events from `start` on, as a receiver gets them: `<chain>:<seq>:<hash[:16]>`."""
    with rls_scope(tenant.pk):
        events = AuditEvent.objects.filter(tenant_id=tenant.pk, seq__gte=start).order_by("seq")
        return [f"{tenant.pk}:{seq}:{digest[:16]}" for seq, digest in events.values_list("seq", "hash")]


def add_events(tenant, count: int) -> None:
    for n in range(count):
        audit_record(action="thing.happened", actor="test", data={"n": n}, chain=tenant.pk)


# --- syslog -----------------------------------------------------------------------------------


def test_it_delivers_the_chain_to_a_syslog_listener_as_rfc5424_frames(acme, receiver, loopback_allowed):
    listener = receiver()
    sink = syslog_sink(acme, listener.port, format="ocsf")
    add_events(acme, 3)
    expected = chain_ids(acme)
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, batch=4)
    assert (result.status, result.delivered, result.cursor) == ("delivered", len(expected), chain_head(acme.pk))
    assert listener.ids == expected
    first = FRAME.match(listener.messages[0])
    assert (int(first.group(1)), first.group(3)) == (13 * 8 + 6, b"acme.localhost")  # log audit, informational
    assert first.group(4).decode() == listener.records()[0]["message"]  # MSGID: the action
    assert [r["metadata"]["uid"] for r in listener.records()] == expected  # the same id in the OCSF body
    assert audit_sink_get(acme.pk, "siem").cursor == chain_head(acme.pk)
    # Nothing new: nothing sent.
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "idle"
    assert len(listener.messages) == len(expected)


@pytest.mark.parametrize("crash_after", [12, 10, 15, 3])
def test_a_receiver_restart_loses_nothing_and_resends_only_the_batch_in_flight(
    acme, receiver, loopback_allowed, crash_after
):
    first = receiver(crash_after=crash_after)
    sink = syslog_sink(acme, first.port)
    add_events(acme, 20 - chain_head(acme.pk))
    expected = chain_ids(acme)
    assert len(expected) == 20
    confirmed = crash_after // 5 * 5  # batches of 5: those the receiver read to the end before it died

    failed = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, batch=5, retry_delays=(0.05, 0.05))
    assert failed.status == "failed"
    assert failed.error.code in ("syslog_unconfirmed", "syslog_connect_failed", "syslog_send_failed")
    assert first.ids == expected[:crash_after]
    stored = audit_sink_get(acme.pk, "siem")
    assert stored.cursor == confirmed  # only what the receiver confirmed
    assert (stored.failures, stored.last_error_code) == (1, failed.error.code)
    assert stored.next_attempt_at > dt.datetime.now(dt.UTC)
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "waiting"  # backing off

    second = receiver(first.port)  # back on the same port
    resumed = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, batch=5, force=True)
    assert (resumed.status, resumed.delivered, resumed.cursor) == ("delivered", 20 - confirmed, 20)
    assert second.ids == expected[confirmed:]
    received = first.ids + second.ids
    assert sorted(set(received), key=expected.index) == expected  # nothing lost
    # Twice: only what the receiver had read of the batch in flight when it died.
    assert [i for i in expected if received.count(i) > 1] == expected[confirmed:crash_after]
    stored = audit_sink_get(acme.pk, "siem")
    assert (stored.cursor, stored.failures, stored.last_error_code, stored.next_attempt_at) == (20, 0, "", None)


def test_a_receiver_that_is_down_gets_the_events_once_it_is_back(acme, receiver, loopback_allowed):
    listener = receiver()
    port = listener.port
    listener.stop()
    sink = syslog_sink(acme, port)
    down = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    assert (down.status, down.error.code, down.cursor) == ("failed", "syslog_connect_failed", 0)
    back = receiver(port)
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, force=True).status == "delivered"
    assert back.ids == chain_ids(acme)


def test_syslog_over_tls_verifies_the_receiver_certificate(acme, receiver, loopback_allowed, tmp_path):
    pem, context = self_signed(tmp_path)
    listener = receiver(tls=context)
    trusted = syslog_sink(acme, listener.port, name="trusted", tls=True, ca_certificate=pem)
    result = sink_deliver(tenant_id=acme.pk, sink_id=trusted.pk)
    assert result.status == "delivered"
    assert listener.ids == chain_ids(acme)
    # Without the CA, the public CAs do not vouch for it: refused before a byte of the trail is sent.
    untrusted = syslog_sink(acme, listener.port, name="untrusted", tls=True)
    before = len(listener.messages)
    refused = sink_deliver(tenant_id=acme.pk, sink_id=untrusted.pk, retry_delays=())
    assert (refused.status, refused.error.code) == ("failed", "syslog_tls_failed")
    assert "CERTIFICATE_VERIFY_FAILED" in refused.error.message
    assert len(listener.messages) == before


def test_a_tls_syslog_host_written_fully_qualified_is_verified_on_its_name(
    acme, receiver, loopback_allowed, tmp_path, monkeypatch
):
    """`siem.example.com.` (a trailing dot) is a host name a sink takes; its certificate names it
    without the dot. The dot went to TLS as the name to verify, and every delivery failed
    (`Hostname mismatch`), the sink backing off for good. Found by a review."""
    pem, context = self_signed(tmp_path)  # a certificate for `localhost` and 127.0.0.1
    listener = receiver(tls=context)
    monkeypatch.setattr(delivery, "_resolve", lambda host, port: ["127.0.0.1"])  # no resolver answers `localhost.`
    fields = SinkFields(kind="syslog", host="localhost.", port=listener.port, tls=True, ca_certificate=pem)
    sink = audit_sink_set(tenant=acme, name="siem", fields=fields, actor="test")
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    assert result.status == "delivered", result
    assert listener.ids == chain_ids(acme)


def test_a_sink_being_delivered_by_another_worker_is_left_alone(acme, receiver, loopback_allowed):
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    held = get_redis_connection("default").lock(f"foundry:audit-sink-lock:{sink.pk}", timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "busy"
        assert listener.messages == []
    finally:
        held.release()
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "delivered"


def test_a_cursor_rewound_while_a_batch_is_in_flight_is_not_overwritten(acme, receiver, loopback_allowed):
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "delivered"
    first = chain_ids(acme)
    in_flight = audit_sink_get(acme.pk, "siem")  # a delivery run's view of the sink
    syslog_sink(acme, listener.port, cursor=0)  # meanwhile, the admin asks for everything again
    assert delivery._advance(in_flight, in_flight.cursor + 1) is False  # the run's acknowledgement loses
    assert audit_sink_get(acme.pk, "siem").cursor == 0
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "delivered"
    assert listener.ids == first + chain_ids(acme)


# --- destinations -----------------------------------------------------------------------------


def test_loopback_and_private_destinations_need_an_operators_allowance(acme, receiver, settings):
    listener = receiver()
    with pytest.raises(ValidationError) as refused:
        syslog_sink(acme, listener.port)
    assert refused.value.error_dict["host"][0].code == "sink_address_refused"
    # A name is checked when it is resolved, at every delivery.
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK
    fields = SinkFields(kind="syslog", host="localhost", port=listener.port, tls=False)
    sink = audit_sink_set(tenant=acme, name="byname", fields=fields, actor="test")
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    assert (result.status, result.error.code) == ("failed", "sink_address_refused")
    assert listener.messages == []
    # The tenant's own allowance (set by operators) admits it too.
    acme.http_allowed_networks = ["127.0.0.0/8", "::1/128"]
    acme.save(update_fields=["http_allowed_networks"])
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, force=True).status == "delivered"


def test_cloud_metadata_stays_refused(acme, settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK
    with pytest.raises(ValidationError) as refused:
        fields = SinkFields(kind="webhook", url="https://169.254.169.254/x")
        audit_sink_set(tenant=acme, name="meta", fields=fields, actor="test")
    assert refused.value.error_dict["url"][0].code == "sink_address_refused"


# --- webhook ----------------------------------------------------------------------------------


def test_a_webhook_is_retried_after_500s_then_acknowledged_and_every_post_is_signed(acme, loopback_allowed, tmp_path):
    pem, context = self_signed(tmp_path)
    hook = WebhookReceiver(context, statuses=[500, 503])
    try:
        fields = SinkFields(kind="webhook", url=hook.url, secret="s3cret-s3cret-s3cret", ca_certificate=pem)
        sink = audit_sink_set(tenant=acme, name="hook", fields=fields, actor="test")
        expected = chain_ids(acme)
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=(0.01, 0.01))
    finally:
        hook.stop()
    assert (result.status, result.delivered, result.cursor) == ("delivered", len(expected), chain_head(acme.pk))
    assert hook.ids == [expected, expected, expected]  # the same batch, three times, acknowledged the third
    for headers, body in hook.posts:
        timestamp, digest = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", headers["X-Foundry-Signature"]).groups()
        mac = hmac.new(b"s3cret-s3cret-s3cret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, digest)
        assert headers["Content-Type"] == "application/json"
        assert headers["Host"] == hook.url.split("/")[2]
    batch = json.loads(hook.posts[0][1])
    assert (batch["sink"], batch["chain"], batch["format"]) == ("hook", acme.pk, "jsonl")
    assert (batch["first_seq"], batch["last_seq"]) == (1, chain_head(acme.pk))
    assert audit_sink_get(acme.pk, "hook").failures == 0


def test_a_webhook_whose_receiver_takes_smaller_bodies_gets_smaller_batches(acme, loopback_allowed, tmp_path):
    """A receiver answering 413 (its body limit) to a batch blocked the sink for good: the same
    batch was retried, and after each back-off, for ever. The batch is halved until one passes, so
    every event arrives once, in order; only one event larger than the limit fails (reported).
    Found by a review."""
    for n in range(20):
        audit_record(action="test.delivery.filler", actor="test", data={"n": n, "pad": "x" * 200}, chain=acme.pk)
    pem, context = self_signed(tmp_path)
    hook = WebhookReceiver(context, max_body=4_000)
    try:
        sink = audit_sink_set(
            tenant=acme, name="hook", fields=SinkFields(kind="webhook", url=hook.url, ca_certificate=pem), actor="test"
        )
        expected = chain_ids(acme)
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    finally:
        hook.stop()
    assert (result.status, result.delivered) == ("delivered", len(expected)), result
    assert hook.refused >= 1 and [event for batch in hook.ids for event in batch] == expected
    assert audit_sink_get(acme.pk, "hook").failures == 0


def test_a_webhook_that_keeps_failing_backs_off(acme, loopback_allowed, tmp_path):
    pem, context = self_signed(tmp_path)
    hook = WebhookReceiver(context, statuses=[500] * 10)
    try:
        sink = audit_sink_set(
            tenant=acme, name="hook", fields=SinkFields(kind="webhook", url=hook.url, ca_certificate=pem), actor="test"
        )
        assert (acme.pk, sink.pk) in sinks_due()
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=(0.01,))
        assert (result.status, result.error.code, result.cursor) == ("failed", "webhook_rejected", 0)
        assert len(hook.posts) == 2 and "X-Foundry-Signature" not in hook.posts[0][0]
        stored = audit_sink_get(acme.pk, "hook")
        assert stored.failures == 1 and stored.last_error == "'127.0.0.1' answered 500, not 2xx."
        assert (acme.pk, sink.pk) not in sinks_due()  # backing off
        assert (acme.pk, sink.pk) in sinks_due(stored.next_attempt_at + dt.timedelta(seconds=1))
        sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=(), force=True)
        assert audit_sink_get(acme.pk, "hook").failures == 2
    finally:
        hook.stop()


def test_a_webhook_certificate_is_verified(acme, loopback_allowed, tmp_path):
    _, context = self_signed(tmp_path)
    hook = WebhookReceiver(context)
    try:
        sink = audit_sink_set(tenant=acme, name="hook", fields=SinkFields(kind="webhook", url=hook.url), actor="test")
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    finally:
        hook.stop()
    assert (result.status, result.error.code) == ("failed", "webhook_failed")
    assert "CERTIFICATE_VERIFY_FAILED" in result.error.message
    assert hook.posts == []


# --- isolation --------------------------------------------------------------------------------


def test_each_tenants_sink_receives_only_its_own_chain(acme, globex, receiver, loopback_allowed):
    with schema_context(globex.schema_name):
        audit_record(action="globex.secret", actor="test", data={"marker": "GLOBEX-ONLY"})
    acme_listener, globex_listener = receiver(), receiver()
    acme_sink = syslog_sink(acme, acme_listener.port)
    globex_sink = syslog_sink(globex, globex_listener.port)
    assert sink_deliver(tenant_id=acme.pk, sink_id=acme_sink.pk).status == "delivered"
    assert sink_deliver(tenant_id=globex.pk, sink_id=globex_sink.pk).status == "delivered"
    assert acme_listener.ids == chain_ids(acme)
    assert globex_listener.ids == chain_ids(globex)
    assert not any(b"GLOBEX-ONLY" in m for m in acme_listener.messages)
    # Asked to deliver globex's sink in acme's scope, the database shows no such sink.
    assert sink_deliver(tenant_id=acme.pk, sink_id=globex_sink.pk).status == "gone"
    with rls_scope(acme.pk):
        assert list(AuditSink.objects.values_list("name", flat=True)) == ["siem"]
        assert AuditSink.objects.filter(pk=globex_sink.pk).update(cursor=0) == 0


def test_a_suspended_tenants_sinks_are_not_delivered(acme, receiver, loopback_allowed):
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    acme.status = acme.Status.SUSPENDED
    acme.save(update_fields=["status"])
    assert (acme.pk, sink.pk) not in sinks_due()
    assert sink_deliver(tenant_id=acme.pk, sink_id=sink.pk).status == "suspended"
    assert listener.messages == []


def test_a_workspace_suspended_during_a_delivery_run_gets_no_further_batch(
    acme, receiver, loopback_allowed, monkeypatch
):
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    add_events(acme, 3)
    send = delivery._send

    def send_then_suspend(*args):  # the first batch reaches the receiver, then an operator suspends
        send(*args)
        Tenant.objects.filter(pk=acme.pk).update(status=Tenant.Status.SUSPENDED)

    monkeypatch.setattr(delivery, "_send", send_then_suspend)
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, batch=1, retry_delays=())
    assert (result.status, result.delivered, len(listener.messages)) == ("suspended", 1, 1)


# --- the beat job and a real worker -----------------------------------------------------------


def test_the_beat_job_has_a_worker_deliver_due_sinks(celery_worker_process, fresh_tenant, django_db_blocker):
    listener = SyslogReceiver()
    try:
        with django_db_blocker.unblock():  # committed: the worker must see it
            tenant = tenant_http_networks_set(tenant=fresh_tenant, networks=["127.0.0.0/8"], actor="test")
            sink = syslog_sink(tenant, listener.port)
            expected = chain_ids(tenant)
            assert audit_deliver_sinks.apply().get() >= 1  # the beat: queues one delivery per due sink
        deadline = time.monotonic() + 30
        while len(listener.messages) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.ids == expected
        with django_db_blocker.unblock():
            deadline = time.monotonic() + 10
            while audit_sink_get(tenant.pk, "siem").cursor != len(expected) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert audit_sink_get(tenant.pk, "siem").cursor == len(expected)
            assert (tenant.pk, sink.pk) not in sinks_due()
    finally:
        listener.stop()


# --- the sinks API ----------------------------------------------------------------------------


def put(client, name: str, body) -> object:
    return client.put(f"/api/v1/audit/sinks/{name}", body, content_type="application/json")


def test_an_admin_sets_lists_gets_and_deletes_a_sink_whose_secret_is_never_shown(acme, loopback_allowed):
    client = api(acme, issue(acme))
    body = {"kind": "webhook", "url": "https://127.0.0.1:9/in/TOKEN-IN-PATH", "secret": "s" * 20, "format": "ocsf"}
    created = put(client, "hook", body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["name"], data["kind"], data["format"], data["has_secret"], data["cursor"]) == (
        "hook",
        "webhook",
        "ocsf",
        True,
        0,
    )
    assert (data["host"], data["port"], data["tls"]) == ("", None, True)
    assert data["pending"] == data["head"] == chain_head(acme.pk)
    assert "secret" not in data and "s" * 20 not in created.content.decode()
    listed = client.get("/api/v1/audit/sinks").json()["sinks"]
    assert [s["name"] for s in listed] == ["hook"]
    assert client.get("/api/v1/audit/sinks/hook").json()["url"] == body["url"]
    # Without a secret, the stored one stays; an empty one removes it.
    assert put(client, "hook", {"kind": "webhook", "url": body["url"]}).json()["has_secret"] is True
    assert put(client, "hook", {"kind": "webhook", "url": body["url"], "secret": ""}).json()["has_secret"] is False
    set_events = audit_events(acme.schema_name, action="audit.sink.set")
    assert [e.data["created"] for e in set_events] == [True, False, False]
    assert set_events[0].data == {
        "name": "hook",
        "kind": "webhook",
        "format": "ocsf",
        "enabled": True,
        "url_host": "127.0.0.1:9",
        "signed": True,
        "ca_certificate": False,
        "created": True,
    }
    assert "TOKEN-IN-PATH" not in json.dumps([e.data for e in set_events]) and "s" * 20 not in str(set_events)
    assert client.delete("/api/v1/audit/sinks/hook").status_code == 204
    missing = client.get("/api/v1/audit/sinks/hook")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "sink_not_found")
    deleted = audit_events(acme.schema_name, action="audit.sink.delete")
    assert [(e.data["name"], e.actor_type, e.target) for e in deleted] == [("hook", "token", "audit_sink:hook")]


def test_a_syslog_sink_gets_the_default_port_and_can_be_rewound(acme, loopback_allowed):
    client = api(acme, issue(acme))
    data = put(client, "siem", {"kind": "syslog", "host": "SIEM.Example.com"}).json()
    assert (data["host"], data["port"], data["tls"], data["url"]) == ("siem.example.com", 6514, True, "")
    plain = put(client, "siem", {"kind": "syslog", "host": "127.0.0.1", "tls": False, "cursor": 1}).json()
    assert (plain["port"], plain["tls"], plain["cursor"]) == (601, False, 1)


@pytest.mark.parametrize(
    "body, field, code",
    [
        ({}, "kind", "required"),
        ({"kind": "smtp"}, "kind", "kind_invalid"),
        ({"kind": "syslog"}, "host", "host_required"),
        ({"kind": "syslog", "host": "bad host!"}, "host", "host_invalid"),
        ({"kind": "syslog", "host": "-x.example.com"}, "host", "host_invalid"),
        ({"kind": "syslog", "host": "10.0.0.1"}, "host", "sink_address_refused"),
        ({"kind": "syslog", "host": "siem.example.com", "port": 70000}, "port", "port_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "port": 0}, "port", "port_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "port": 10**30}, "port", "port_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "cursor": 10**30}, "cursor", "cursor_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "port": "514"}, "port", "port_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "tls": "yes"}, "tls", "invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "url": "https://x.example.com"}, "url", "field_not_supported"),
        (
            {"kind": "syslog", "host": "s.example.com", "tls": False, "ca_certificate": "x"},
            "ca_certificate",
            "field_not_supported",
        ),
        (
            {"kind": "syslog", "host": "s.example.com", "ca_certificate": "not a pem"},
            "ca_certificate",
            "ca_certificate_invalid",
        ),
        ({"kind": "syslog", "host": "siem.example.com", "cursor": 10**9}, "cursor", "cursor_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "cursor": -1}, "cursor", "cursor_invalid"),
        ({"kind": "webhook"}, "url", "url_required"),
        ({"kind": "webhook", "url": "http://siem.example.com/in"}, "url", "url_insecure"),
        ({"kind": "webhook", "url": "ftp://siem.example.com/in"}, "url", "url_invalid"),
        ({"kind": "webhook", "url": "https://user:pw@siem.example.com/in"}, "url", "url_invalid"),
        ({"kind": "webhook", "url": "https://siem.example.com/in#x"}, "url", "url_invalid"),
        ({"kind": "webhook", "url": "https://[::1/in"}, "url", "url_invalid"),
        ({"kind": "webhook", "url": "https://siem.example.com", "secret": "short"}, "secret", "secret_invalid"),
        (
            {"kind": "webhook", "url": "https://siem.example.com", "host": "x.example.com"},
            "host",
            "field_not_supported",
        ),
        ({"kind": "webhook", "url": "https://siem.example.com", "tls": False}, "tls", "field_not_supported"),
        ({"kind": "webhook", "url": 5}, "url", "not_a_string"),
        ({"kind": "syslog", "host": "siem.example.com", "format": "cef"}, "format", "format_invalid"),
    ],
)
def test_bad_input_is_a_400_with_a_stable_code_and_changes_nothing(acme, body, field, code):
    before = len(audit_events(acme.schema_name, action="audit.sink.set"))
    response = put(api(acme, issue(acme)), "siem", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["details"][field][0]["code"] == code
    assert "short" not in response.content.decode()
    with rls_scope(acme.pk):
        assert not AuditSink.objects.filter(tenant_id=acme.pk).exists()
    assert len(audit_events(acme.schema_name, action="audit.sink.set")) == before


@pytest.mark.parametrize("name", ["Upper", "a" * 64, "_x", "siem.prod", "my sink", "hook@corp", "é", "a%00b"])
def test_bad_names_are_refused(acme, name):
    """As names, not as a missing endpoint: a name outside the URL's slug characters too."""
    response = put(api(acme, issue(acme)), name, {"kind": "syslog", "host": "siem.example.com"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["name"][0]["code"] == "name_invalid"


@pytest.mark.parametrize("name", ["siem.prod", "my sink", "a%00b"])
def test_reading_or_deleting_a_sink_by_a_name_no_sink_can_have_is_a_404(acme, name):
    client = api(acme, issue(acme))
    for response in (client.get(f"/api/v1/audit/sinks/{name}"), client.delete(f"/api/v1/audit/sinks/{name}")):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "sink_not_found"


def test_malformed_bodies_are_400(acme):
    client = api(acme, issue(acme))
    assert put(client, "siem", "{nope").json()["error"]["code"] == "parse_error"
    assert put(client, "siem", "[1]").status_code == 400


def test_a_workspace_has_at_most_ten_sinks(acme):
    client = api(acme, issue(acme))
    for n in range(10):
        assert put(client, f"s{n}", {"kind": "syslog", "host": "siem.example.com"}).status_code == 201
    refused = put(client, "s10", {"kind": "syslog", "host": "siem.example.com"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "sink_limit")


@pytest.mark.parametrize(
    "role, scopes",
    [("developer", ["read", "write", "run", "admin"]), ("viewer", ["read"]), ("admin", ["read", "write"])],
)
def test_sinks_need_settings_manage_and_the_admin_scope(acme, role, scopes):
    client = api(acme, issue(acme, role=role, scopes=scopes))
    assert client.get("/api/v1/audit/sinks").status_code == 403
    assert put(client, "siem", {"kind": "syslog", "host": "siem.example.com"}).status_code == 403
    with rls_scope(acme.pk):
        assert not AuditSink.objects.exists()


def test_one_workspaces_sinks_are_invisible_and_untouchable_from_another(acme, globex):
    assert put(api(globex, issue(globex)), "siem", {"kind": "syslog", "host": "globex.example.com"}).status_code == 201
    acme_client = api(acme, issue(acme))
    assert acme_client.get("/api/v1/audit/sinks").json() == {"sinks": []}
    assert acme_client.get("/api/v1/audit/sinks/siem").status_code == 404
    assert acme_client.delete("/api/v1/audit/sinks/siem").status_code == 404
    assert (
        put(acme_client, "siem", {"kind": "syslog", "host": "acme.example.com"}).status_code == 201
    )  # its own, created: not globex's replaced
    assert audit_sink_get(globex.pk, "siem").host == "globex.example.com"
    assert audit_sink_get(acme.pk, "siem").host == "acme.example.com"


def test_a_secret_needs_the_platforms_encryption_key(acme, settings):
    settings.FOUNDRY_ENCRYPTION_KEYS = []
    response = put(
        api(acme, issue(acme)), "hook", {"kind": "webhook", "url": "https://x.example.com", "secret": "s" * 16}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (503, "encryption_not_configured")


# --- the console page -------------------------------------------------------------------------


def test_an_admin_adds_edits_and_deletes_a_sink_in_the_console(acme, owner_client):
    page = owner_client.get("/settings/audit-sinks/")
    assert page.status_code == 200 and b"No sinks yet" in page.content
    form = {
        "name": "hook",
        "kind": "webhook",
        "format": "jsonl",
        "enabled": "on",
        "url": "https://siem.example.com/in",
        "secret": "console-secret-123",
        "host": "ignored.example.com",
    }
    assert owner_client.post("/settings/audit-sinks/", form).status_code == 302
    again = owner_client.post("/settings/audit-sinks/", form)  # "Add" never replaces a sink silently
    assert again.status_code == 400 and b"A sink has this name" in again.content
    listing = owner_client.get("/settings/audit-sinks/").content.decode()
    assert "https://siem.example.com/in" in listing and "signed" in listing and "console-secret-123" not in listing
    edit = owner_client.get("/settings/audit-sinks/hook/")
    assert edit.status_code == 200 and b"console-secret-123" not in edit.content
    changed = {**form, "secret": "", "url": "https://siem.example.com/v2", "cursor": "0"}
    assert owner_client.post("/settings/audit-sinks/hook/", changed).status_code == 302
    sink = audit_sink_get(acme.pk, "hook")
    assert (sink.url, sink.has_secret, sink.host) == ("https://siem.example.com/v2", True, "")
    bad = owner_client.post("/settings/audit-sinks/hook/", {**changed, "url": "http://siem.example.com"})
    assert bad.status_code == 400 and b"audit events must not cross the network in clear" in bad.content
    assert owner_client.get("/settings/audit-sinks/hook/delete/").status_code == 200
    assert owner_client.post("/settings/audit-sinks/hook/delete/").status_code == 302
    assert owner_client.get("/settings/audit-sinks/hook/").status_code == 404
    owner = tenant_user(acme, "owner@acme.test")
    assert [e.actor_id for e in audit_events(acme.schema_name, action="audit.sink.delete")] == [f"user:{owner.pk}"]


def test_the_console_refuses_roles_without_settings_manage(acme):
    viewer = client_for(acme, "viewer@acme.test")
    assert viewer.get("/settings/audit-sinks/").status_code == 403
    assert (
        viewer.post("/settings/audit-sinks/", {"name": "x", "kind": "syslog", "host": "a.example.com"}).status_code
        == 403
    )
    with rls_scope(acme.pk):
        assert not AuditSink.objects.exists()


def test_a_run_whose_lock_expired_sends_no_further_batch(acme, receiver, loopback_allowed, monkeypatch):
    """The sink's lock lasts one batch and is renewed before the next; a run that finds it gone
    (a batch took longer than it lasts, and another worker may be delivering the sink now) stops
    instead of sending beside that worker, out of order."""
    listener = receiver()
    sink = syslog_sink(acme, listener.port)
    add_events(acme, 3)
    send = delivery._send

    def send_then_expire(*args):
        send(*args)
        get_redis_connection("default").delete(f"foundry:audit-sink-lock:{sink.pk}")

    monkeypatch.setattr(delivery, "_send", send_then_expire)
    result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, batch=1, retry_delays=())
    assert (result.status, result.delivered, len(listener.messages)) == ("busy", 1, 1)
    assert audit_sink_get(acme.pk, "siem").cursor == 1  # what was acknowledged stays acknowledged


def test_a_run_whose_lock_expired_sends_no_further_halved_batch(acme, loopback_allowed, tmp_path, monkeypatch):
    """A receiver answering 413 makes the run halve the batch and send again (up to 8 POSTs of up
    to 30 s each, longer than the lock's 215 s): each halved batch is a batch, the lock renewed
    before it. It was not (only after a delivered batch): here the lock vanishes after the first
    413, and the run stops (`busy`), sending nothing more."""
    for n in range(8):
        audit_record(action="test.delivery.filler", actor="test", data={"n": n}, chain=acme.pk)
    pem, context = self_signed(tmp_path)
    hook = WebhookReceiver(context, max_body=10)  # every batch is answered 413
    send = delivery._send
    sent = []

    def send_then_expire(sink, *args):
        sent.append(1)
        try:
            send(sink, *args)
        finally:
            get_redis_connection("default").delete(f"foundry:audit-sink-lock:{sink.pk}")

    monkeypatch.setattr(delivery, "_send", send_then_expire)
    try:
        sink = audit_sink_set(
            tenant=acme, name="hook", fields=SinkFields(kind="webhook", url=hook.url, ca_certificate=pem), actor="test"
        )
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    finally:
        hook.stop()
    assert hook.refused == 1 and len(sent) == 1, (
        f"{hook.refused} POSTs sent, {hook.refused - 1} of them after the sink's lock was gone: {result}"
    )
    assert result.status == "busy", result


def test_a_soft_time_limit_while_sending_is_recorded_as_such_and_frees_the_sink(acme, loopback_allowed, caplog):
    """Celery's soft time limit, raised from its signal handler while the platform waits for a
    receiver that takes the bytes and never confirms: the sink records `sink_time_limit` and backs
    off (it was `sink_failed`, logged as an unexpected error), and the run leaves its lock."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never reads or closes
    sink = syslog_sink(acme, silent.getsockname()[1])
    add_events(acme, 2)

    def soft_time_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_time_limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=(5.0,))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        silent.close()
    assert (result.status, result.error.code, result.cursor) == ("failed", "sink_time_limit", 0)
    stored = audit_sink_get(acme.pk, "siem")
    assert (stored.last_error_code, stored.failures) == ("sink_time_limit", 1) and stored.next_attempt_at
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    again = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=(), force=True)
    assert again.status != "busy"  # the interrupted run left its lock
