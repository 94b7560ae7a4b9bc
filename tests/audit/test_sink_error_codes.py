"""docs/audit-siem.md: "Configuration errors are 400 with a code per field: name_invalid,
kind_invalid, format_invalid, host_required, host_invalid, port_invalid, url_required,
url_insecure, url_invalid, ...". The API's input checks (a value too long, a port that is no
integer) answered DRF's `max_length` / `invalid` first, so a SIEM integration keyed on the
documented codes got an undocumented one."""

import pytest

from tests.api.conftest import api, issue


@pytest.mark.parametrize(
    "body, field, code",
    [
        ({"kind": "k" * 21}, "kind", "kind_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "format": "f" * 21}, "format", "format_invalid"),
        ({"kind": "syslog", "host": "a" * 254}, "host", "host_invalid"),
        ({"kind": "webhook", "url": "https://siem.example.com/" + "p" * 480}, "url", "url_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "port": "6514x"}, "port", "port_invalid"),
        ({"kind": "syslog", "host": "siem.example.com", "cursor": "abc"}, "cursor", "cursor_invalid"),
    ],
    ids=["kind-too-long", "format-too-long", "host-too-long", "url-too-long", "port-not-int", "cursor-not-int"],
)
def test_sink_configuration_errors_use_the_documented_field_codes(acme, settings, body, field, code):
    """The field's documented code (kind_invalid, format_invalid, host_invalid, url_invalid,
    port_invalid, cursor_invalid), as every other bad value of these fields gets."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = []
    response = api(acme, issue(acme)).put("/api/v1/audit/sinks/siem", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][field][0]["code"] == code
