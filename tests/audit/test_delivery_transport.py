"""SIEM push delivery's transport (apps/audit/delivery.py), against real receivers on loopback: a
name lookup bounded in time, so a run never outlives the lock that makes it the sink's only
one; a webhook to an IPv6 literal sent with a valid (bracketed) Host."""

import http.server
import ipaddress
import socket
import threading
import time

from cryptography import x509
from django_redis import get_redis_connection

from apps.audit import delivery
from apps.audit.delivery import SinkFields, audit_sink_get, audit_sink_set, sink_deliver
from tests.audit.test_delivery import LOOPBACK, SyslogReceiver, self_signed
from tests.stub_http import StubHTTPServer


class _V6Server(StubHTTPServer):
    address_family = socket.AF_INET6


def test_a_name_server_that_never_answers_fails_the_attempt_within_its_time(
    fresh_tenant, django_db_blocker, settings, monkeypatch
):
    """getaddrinfo has no time limit of its own: the lookup before each attempt is given
    IO_TIMEOUT, after which the attempt fails (`sink_dns_failed`) and the run ends, long before
    the lock that keeps a second worker away expires; nothing is sent, nothing skipped."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK
    monkeypatch.setattr(delivery, "IO_TIMEOUT", 0.3)
    listener = SyslogReceiver()
    with django_db_blocker.unblock():
        fields = SinkFields(kind="syslog", host="siem.example", port=listener.port, tls=False)
        sink = audit_sink_set(tenant=fresh_tenant, name="siem", fields=fields, actor="test")

    def never_answers(host, port):
        time.sleep(5)
        return ["127.0.0.1"]

    monkeypatch.setattr(delivery, "_resolve", never_answers)
    started = time.monotonic()
    with django_db_blocker.unblock():
        result = sink_deliver(tenant_id=fresh_tenant.pk, sink_id=sink.pk, budget=0, retry_delays=())
        cursor = audit_sink_get(fresh_tenant.pk, "siem").cursor
    assert time.monotonic() - started < 3, result
    assert result.status == "failed" and result.error.code == "sink_dns_failed", result
    assert cursor == 0
    assert not get_redis_connection("default").exists(f"foundry:audit-sink-lock:{sink.pk}")


def test_a_webhook_to_an_ipv6_literal_sends_a_bracketed_host_header(
    fresh_tenant, django_db_blocker, settings, tmp_path
):
    """A webhook to an IPv6 literal (`https://[::1]:8443/ingest`) is sent `Host: [::1]:8443`, the
    address bracketed as RFC 9110 and RFC 3986 write it (unbracketed, `::1:8443` is ambiguous,
    and receivers that check the authority refuse it); agent HTTP tools build it the same way."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK
    pem, context = self_signed(tmp_path, [x509.IPAddress(ipaddress.ip_address("::1"))])
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _V6Server(("::1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        with django_db_blocker.unblock():
            fields = SinkFields(kind="webhook", url=f"https://[::1]:{port}/ingest", ca_certificate=pem)
            sink = audit_sink_set(tenant=fresh_tenant, name="hook6", fields=fields, actor="test")
            result = sink_deliver(tenant_id=fresh_tenant.pk, sink_id=sink.pk, retry_delays=())
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "delivered", result
    assert hosts == [f"[::1]:{port}"]
