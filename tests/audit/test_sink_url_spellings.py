"""Webhook sink addresses refused when saved (docs/audit-siem.md): a literal address in any spelling
the delivery's URL parser reads as one (IDNA dots: `127。0。0。1`), and port 0."""

import pytest

from apps.audit.models import AuditSink
from apps.audit.scope import rls_scope
from tests.api.conftest import api, issue


def put(client, name: str, body) -> object:
    return client.put(f"/api/v1/audit/sinks/{name}", body, content_type="application/json")


@pytest.mark.parametrize(
    "url",
    [
        "https://127\u30020\u30020\u30021/in",  # IDEOGRAPHIC FULL STOP: httpx/IDNA read it as "."
        "https://127\uff0e0\uff0e0\uff0e1/in",  # FULLWIDTH FULL STOP
        "https://127\uff610\uff610\uff611/in",  # HALFWIDTH IDEOGRAPHIC FULL STOP
        "https://10\u30020\u30020\u30021/in",  # a private address, same spelling
    ],
)
def test_a_literal_address_spelled_with_idna_dots_is_refused_when_saved(acme, url):
    """docs/audit-siem.md: literal addresses, 'in any spelling a resolver reads as one', are checked
    when a sink is saved (`sink_address_refused`): the host as the delivery's URL parser (httpx,
    IDNA) reads it, 127.0.0.1 / 10.0.0.1."""
    response = put(api(acme, issue(acme)), "hook", {"kind": "webhook", "url": url})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["url"][0]["code"] == "sink_address_refused"
    with rls_scope(acme.pk):
        assert not AuditSink.objects.filter(tenant_id=acme.pk).exists()


def test_a_webhook_url_with_port_0_is_refused(acme):
    """As port 65536 is (`url_invalid`), and a syslog port 0: a destination no delivery reaches."""
    response = put(api(acme, issue(acme)), "hook", {"kind": "webhook", "url": "https://siem.example.com:0/in"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["url"][0]["code"] == "url_invalid"
