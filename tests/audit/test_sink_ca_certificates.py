"""A sink's `ca_certificate` is validated with `cryptography`, but used by the `ssl` module
(OpenSSL's PEM reader via `cadata=`). PEM text the first accepts and the second cannot load is
saved without complaint, and then breaks every delivery of the sink — for a webhook (and for
non-ASCII text, a syslog sink too) with an exception that escapes `sink_deliver` altogether:
no error code, no back-off, the Celery task crashes at every beat."""

import datetime as dt
import ipaddress
import ssl

import pytest
from django.utils import timezone

from apps.audit.delivery import sink_deliver
from apps.audit.models import AuditSink
from apps.audit.scope import rls_scope
from tests.api.conftest import api, issue
from tests.audit.test_delivery import SyslogReceiver, self_signed

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.fixture
def loopback_allowed(settings):
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = LOOPBACK


def indented(pem: str) -> str:
    """The PEM as pasted from a YAML file or an e-mail: every line indented."""
    return "\n".join("    " + line for line in pem.splitlines()) + "\n"


def with_comment(pem: str) -> str:
    """A bundle with a human-readable line before the certificate, as CA bundles often have."""
    return "# Zertifikat der Société Générale CA\n" + pem


@pytest.mark.parametrize("variant", [indented, with_comment], ids=["indented", "non_ascii_comment"])
def test_ca_certificates_are_stored_as_the_tls_stack_reads_them(acme, loopback_allowed, tmp_path, variant):
    # Indentation pasted from YAML or e-mail and comments around the blocks are dropped on save:
    # the certificates are stored re-encoded, which ssl loads (it refused the text as pasted).
    pem, _ = self_signed(tmp_path)
    body = {"kind": "webhook", "url": "https://siem.example.com/ingest", "ca_certificate": variant(pem)}
    response = api(acme, issue(acme)).put("/api/v1/audit/sinks/hook", body, content_type="application/json")
    assert response.status_code == 201, response.content
    with rls_scope(acme.pk):
        stored = AuditSink.objects.get(tenant_id=acme.pk, name="hook").ca_certificate
    assert stored == pem.strip() + "\n"
    ssl.create_default_context(cadata=stored)


def test_text_that_holds_no_certificate_the_tls_stack_reads_is_refused(acme):
    body = {"kind": "webhook", "url": "https://siem.example.com/ingest", "ca_certificate": "# only a comment\n"}
    response = api(acme, issue(acme)).put("/api/v1/audit/sinks/hook", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["ca_certificate"][0]["code"] == "ca_certificate_invalid"


def stored_sink(tenant, **fields) -> AuditSink:
    """A sink row as already stored (e.g. saved before validation caught this PEM)."""
    now = timezone.now()
    with rls_scope(tenant.pk):
        return AuditSink.objects.create(tenant_id=tenant.pk, name="stored", updated_at=now, **fields)


@pytest.mark.parametrize(
    "kind, variant",
    [("webhook", indented), ("webhook", with_comment), ("syslog", with_comment)],
    ids=["webhook-indented", "webhook-non_ascii", "syslog-non_ascii"],
)
def test_a_sink_whose_ca_certificate_cannot_be_loaded_fails_with_a_code_and_backs_off(
    acme, loopback_allowed, tmp_path, request, kind, variant
):
    pem, _ = self_signed(tmp_path)
    if kind == "webhook":
        sink = stored_sink(acme, kind=kind, url="https://127.0.0.1:9/ingest", ca_certificate=variant(pem))
    else:
        listener = SyslogReceiver()  # it accepts the connection: TLS setup comes next
        request.addfinalizer(listener.stop)
        sink = stored_sink(acme, kind=kind, host="127.0.0.1", port=listener.port, tls=True, ca_certificate=variant(pem))
    try:
        result = sink_deliver(tenant_id=acme.pk, sink_id=sink.pk, retry_delays=())
    except Exception as exc:  # noqa: BLE001 - what this test is about
        pytest.fail(f"sink_deliver raised {type(exc).__name__}: {exc} (the task crashes; no back-off, no last_error)")
    assert result.status == "failed" and result.error is not None and result.error.code
    with rls_scope(acme.pk):
        stored = AuditSink.objects.get(pk=sink.pk)
    assert stored.failures == 1 and stored.last_error_code == result.error.code
    assert stored.next_attempt_at > dt.datetime.now(dt.UTC)
