"""Offline verification of an export checks what a SIEM indexes too: an OCSF record's fields
outside `unmapped` (time, status, message, api.operation, metadata.uid ...) must be those the
hashed content gives; a malformed checkpoint or event line is `export_line_invalid`, naming its line."""

import json

import pytest

from apps.audit.export import ExportRange, export_lines, export_verify
from apps.audit.services import audit_checkpoint_sign
from foundry.errors import ServiceError
from tests.audit.conftest import committed


def lines_of(span, fmt="jsonl", **options):
    return [json.loads(line) for text in export_lines(span, fmt=fmt, **options) for line in text.splitlines()]


def _set(record, path, value):
    *parents, last = path
    for key in parents:
        record = record[key]
    record[last] = value


@pytest.mark.parametrize(
    "path, value",
    [
        (("time",), 946684800000),  # the event moved to 2000-01-01 in what the SIEM indexes
        (("status_id",), 2),  # a success shown as a failure
        (("status",), "Failure"),
        (("message",), "auth.logout"),  # a different action shown
        (("api", "operation"), "auth.logout"),
        (("metadata", "sequence"), 999),
        (("metadata", "uid"), "1:999"),  # the receiver's de-duplication id
    ],
)
def test_an_edited_ocsf_field_is_reported_altered(chain, path, value):
    committed(audit_checkpoint_sign, chain)
    records = lines_of(ExportRange(chain, 0, 10), "ocsf")
    assert export_verify(json.dumps(r) for r in records).ok
    _set(records[3], path, value)
    verdict = export_verify(json.dumps(r) for r in records)
    assert not verdict.ok, f"OCSF field {'.'.join(path)} edited, yet the export verifies as intact"
    assert (verdict.first.seq, verdict.first.kind) == (4, "altered")


@pytest.mark.parametrize(
    "field, value",
    [("signed_at", "not a time"), ("seq", "10"), ("signed_at", 5)],
)
def test_a_malformed_checkpoint_line_is_a_coded_error(chain, field, value):
    committed(audit_checkpoint_sign, chain)
    records = lines_of(ExportRange(chain, 0, 10))
    assert records[-1]["kind"] == "checkpoint"
    records[-1][field] = value
    with pytest.raises(ServiceError) as refused:
        export_verify(json.dumps(r) for r in records)
    assert (refused.value.code, refused.value.message) == (
        "export_line_invalid",
        f"Line {len(records)} is not an exported event or checkpoint.",
    )


@pytest.mark.parametrize("fmt", ["jsonl", "ocsf"])
@pytest.mark.parametrize(
    "path, value",
    [
        (("seq",), "4"),
        (("occurred_at",), 5),
        (("action",), None),
        (("prev_hash",), 7),
        (("actor", "id"), ["user:1"]),
        (("ip",), {"v": 4}),
        (("chain",), "1"),
    ],
)
def test_an_event_line_with_a_field_of_the_wrong_type_is_a_coded_error(chain, fmt, path, value):
    """A tampered file is a coded refusal naming the line, not a TypeError out of the verifier."""
    committed(audit_checkpoint_sign, chain)
    records = lines_of(ExportRange(chain, 0, 10), fmt)
    if fmt == "ocsf":
        path = {("actor", "id"): ("actor", "user", "uid"), ("ip",): ("src_endpoint", "ip")}.get(
            path, ("unmapped", *path)
        )
    _set(records[3], path, value)
    with pytest.raises(ServiceError) as refused:
        export_verify(json.dumps(r) for r in records)
    assert (refused.value.code, refused.value.message) == (
        "export_line_invalid",
        "Line 4 is not an exported event or checkpoint.",
    )


@pytest.mark.parametrize(
    "case",
    ["ocsf-time-without-its-zone", "chain-1e400", "nested-past-pythons-stack", "signed-at-at-the-calendars-start"],
)
def test_a_line_that_python_cannot_read_as_written_is_a_coded_error(chain, case):
    """A time without its zone, a number past a float, JSON nested past Python's stack, a time
    past the calendar once in UTC: `export_line_invalid` naming the line, not a bare Python error."""
    committed(audit_checkpoint_sign, chain)
    fmt = "ocsf" if case.startswith("ocsf") else "jsonl"
    records = lines_of(ExportRange(chain, 0, 10), fmt)
    line = 4
    if case == "ocsf-time-without-its-zone":
        records[3]["unmapped"]["occurred_at"] = records[3]["unmapped"]["occurred_at"].rstrip("Z")
    elif case == "signed-at-at-the-calendars-start":
        records[-1]["signed_at"], line = "0001-01-01T00:00:00+14:00", len(records)
    text = [json.dumps(r) for r in records]
    if case == "chain-1e400":
        text[3] = json.dumps({**records[3], "hashed_as": chain}).replace(f'"chain": {chain}', '"chain": 1e400')
    elif case == "nested-past-pythons-stack":
        text[3] = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ServiceError) as refused:
        export_verify(text)
    assert (refused.value.code, refused.value.message) == (
        "export_line_invalid",
        f"Line {line} is not an exported event or checkpoint.",
    )
