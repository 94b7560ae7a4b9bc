"""Odd events and odd requests on the audit trail's pages, API, export and command: the event page
at the last sequence number is a 404; details holding a non-finite number are written as its text
(JSON has no `Infinity`), and stored ones (or a lone surrogate's escape, from an import or an edit)
are shown and exported as their stored text — valid JSON lines that export verification reads as
the stored text, never a 500 or an export cut short; a refused `audit_export` leaves its output
file as it was."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.audit.export import MAX_SEQ, export_verify
from apps.audit.services import audit_record
from tests.api.conftest import api, issue
from tests.conftest import client_for


def _strict_json(line: str):
    """RFC 8259 JSON: `NaN`, `Infinity` and `-Infinity` are not JSON (a SIEM's parser refuses them)."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def _raw_append(chain: int, details: str) -> int:
    """Append through the platform's own SQL function (what audit_record and an import call), on
    the test's connection (which already holds the chain's append lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq FROM public.audit_append(%s, 'user', 'user:1', 'thing.odd', '', '', 'success',"
            " '127.0.0.1', 'pytest', '', %s, NULL, NULL)",
            [chain, details],
        )
        return cursor.fetchone()[0]


# --- console event page at the last sequence number ---------------------------------------------


def test_console_event_page_at_the_largest_sequence_number_is_a_404_not_a_500(acme):
    """apps/audit/views.py `_detail_page` accepts seq == MAX_SEQ (2**63-1) and then queries
    `seq__in=[seq - 1, seq, seq + 1]`: seq + 1 is past PostgreSQL's bigint, psycopg raises
    OverflowError and the page was a 500 (the API's detail answers 404). Any number no
    event can have is the page's 404 `not_found`."""
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    response = client.get(f"/audit/events/{MAX_SEQ}/")
    assert response.status_code == 404


def test_platform_event_page_at_the_largest_sequence_number_is_a_404_not_a_500(operator_client):
    """The same on the operator host's platform audit page (`platform_event_detail`)."""
    operator_client.raise_request_exception = False
    response = operator_client.get(f"/audit/events/{MAX_SEQ}/")
    assert response.status_code == 404


# --- details the platform's own writer stores --------------------------------------------------


def _record_non_finite(acme) -> int:
    """audit_record is the one way to record an event; `details_text` (apps/audit/chain.py)
    dumped with json's default allow_nan=True, so a float that is not finite (a ratio divided by
    zero, a 1e400 read from a JSON body) was stored as `Infinity`, which is not JSON; now as "inf"."""
    with schema_context(acme.schema_name):
        return audit_record(action="thing.measured", actor="service:test", data={"ratio": float("inf")}).seq


def test_api_event_list_survives_an_event_whose_details_hold_a_non_finite_number(acme):
    """GET /api/v1/audit/events (and /events/{seq}) was a 500 once the chain held such an event
    (DRF's JSONRenderer refuses out-of-range floats): the workspace can no longer read the newest
    page of its own trail, though /audit/verify says it is intact. Now 200, the event shown."""
    token = issue(acme, role="admin", scopes=("read",))
    seq = _record_non_finite(acme)
    client = api(acme, token)
    client.raise_request_exception = False
    assert client.get("/api/v1/audit/verify").json()["intact"] is True
    assert client.get("/api/v1/audit/events").status_code == 200
    assert client.get(f"/api/v1/audit/events/{seq}").status_code == 200


@pytest.mark.parametrize("fmt", ["jsonl", "ocsf"])
def test_export_lines_are_json_even_for_details_holding_a_non_finite_number(acme, fmt):
    """docs/audit-siem.md: "Both formats are JSON lines: one object per line". `json_line`
    (apps/audit/export.py) wrote the parsed details back with allow_nan=True, so the event's line
    held `Infinity` — not JSON; a SIEM's parser (or jq) rejects the line, or the whole batch
    pushed to a webhook sink. Every line is RFC 8259 JSON, and verifies."""
    token = issue(acme, role="admin", scopes=("read",))
    _record_non_finite(acme)
    response = api(acme, token).get(f"/api/v1/audit/export?format={fmt}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    bad = []
    for number, line in enumerate(body.split("\n"), 1):
        if line:
            try:
                _strict_json(line)
            except ValueError as exc:
                bad.append((number, str(exc)))
    assert bad == []
    assert export_verify(body.splitlines()).ok


# --- details stored as JSON escapes of a lone surrogate ----------------------------------------


def test_export_of_an_event_whose_details_escape_a_lone_surrogate_does_not_die_mid_stream(acme):
    """Stored details are text; `{"note":"\\ud800"}` is valid JSON syntax (an escape) and is
    what audit_append accepts and verifies as intact. `AuditEvent.data` decodes it to a Python
    str with a lone surrogate, which the streamed response's UTF-8 encoding refused after the
    200 went out: the export (and every later one from an earlier cursor) was cut short at that
    event. Such details are exported as their stored text now."""
    token = issue(acme, role="admin", scopes=("read",))
    _raw_append(acme.pk, '{"note":"\\ud800"}')
    client = api(acme, token)
    assert client.get("/api/v1/audit/verify").json()["intact"] is True
    response = client.get("/api/v1/audit/export")
    body = b"".join(response.streaming_content)  # raised UnicodeEncodeError mid-stream
    assert body.count(b'"kind":"event"') >= 1
    assert export_verify(body.decode("utf-8").splitlines()).ok  # the details exported as stored


def test_console_event_page_of_details_escaping_a_lone_surrogate_is_not_a_500(acme):
    """The console's event page (`_detail_page`: json.dumps(ensure_ascii=False) of the same
    details) was a 500 for that event; odd stored details are shown, not a 500."""
    seq = _raw_append(acme.pk, '{"note":"\\ud800"}')
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    assert client.get(f"/audit/events/{seq}/").status_code == 200


# --- manage.py audit_export ---------------------------------------------------------------------


def test_audit_export_refusing_its_cursor_does_not_truncate_the_output_file(acme, tmp_path):
    """`manage.py audit_export --output FILE` opened FILE for writing ("w", truncating it) before
    `audit_export_start` checks --after: a cursor past the head (a typo, or the head of another
    chain) is refused with `cursor_beyond_head`, and the operator's existing file — say the last
    export, kept for the SIEM — was emptied. A refused export leaves the file as it was."""
    output = tmp_path / "audit.jsonl"
    output.write_text('{"kind":"event","id":"1:1"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="cursor_beyond_head"):
        call_command(
            "audit_export", "--tenant", acme.slug, "--after", "999999999", "--output", str(output), stderr=StringIO()
        )
    assert output.read_text(encoding="utf-8") == '{"kind":"event","id":"1:1"}\n'


def test_details_holding_a_backslash_before_such_letters_are_shown_as_the_object_they_are(acme):
    """A note written `\\ud800` — a backslash in the text, stored escaped (`\\\\ud800`) — is no
    surrogate's escape: the details are an object on the API, not their stored text."""
    token = issue(acme, role="admin", scopes=("read",))
    with schema_context(acme.schema_name):
        seq = audit_record(action="thing.noted", actor="service:test", data={"note": "C:\\ud800\\x"}).seq
    details = api(acme, token).get(f"/api/v1/audit/events/{seq}").json()["details"]
    assert details == {"note": "C:\\ud800\\x"}
