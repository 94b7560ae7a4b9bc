"""Export for a SIEM: JSON lines and OCSF, in sequence order, resumable from a cursor, with the
signed checkpoints that let a file be verified offline; the API, its access rules and
isolation; the management command."""

import itertools
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from apps.audit.export import (
    ExportRange,
    chain_head,
    export_lines,
    export_verify,
    ocsf_class,
)
from apps.audit.services import audit_checkpoint_sign, audit_record, checkpoint_dict
from apps.audit.signing import public_keys
from tests.api.conftest import api, issue
from tests.audit.conftest import app_connection, append, committed
from tests.conftest import audit_events, client_for

# --- the formats ------------------------------------------------------------------------------


def lines_of(span: ExportRange, fmt: str = "jsonl", **options) -> list[dict]:
    return [json.loads(line) for text in export_lines(span, fmt=fmt, **options) for line in text.splitlines()]


def test_it_exports_json_lines_in_sequence_order_then_the_signed_checkpoint(chain):
    checkpoint = committed(audit_checkpoint_sign, chain)
    records = lines_of(ExportRange(chain, 0, 10))
    events, signed = records[:10], records[10:]
    assert [e["seq"] for e in events] == list(range(1, 11))
    # The id names this event alone: its chain, number and the start of its hash.
    assert [e["id"] for e in events] == [f"{chain}:{e['seq']}:{e['hash'][:16]}" for e in events]
    first = events[0]
    assert first == {
        "kind": "event",
        "id": f"{chain}:1:{first['hash'][:16]}",
        "chain": chain,
        "seq": 1,
        "occurred_at": first["occurred_at"],
        "actor": {"id": "user:1", "type": "user"},
        "action": "thing.done.1",
        "target_type": "",
        "target_id": "",
        "outcome": "success",
        "ip": "127.0.0.1",
        "user_agent": "pytest",
        "request_id": "",
        "details": {"n": 1},
        "prev_hash": "0" * 64,
        "hash": first["hash"],
    }
    assert first["occurred_at"].endswith("Z") and len(first["occurred_at"]) == 27  # microseconds, as hashed
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))
    assert signed == [{"kind": "checkpoint", **checkpoint_dict(checkpoint)}]
    assert (checkpoint.seq, checkpoint.hash, checkpoint.key_id) == (10, events[-1]["hash"], "test1")
    verdict = export_verify(json.dumps(r) for r in records)
    assert verdict.ok and (verdict.events, verdict.signed_seq, verdict.checkpoints) == (10, 10, 1)


def test_a_resumed_export_starts_after_the_cursor_and_links_to_the_one_before(chain):
    committed(audit_checkpoint_sign, chain)  # vouches for #10
    first = lines_of(ExportRange(chain, 0, 4), checkpoints=False)
    with app_connection() as conn:
        for n in range(11, 14):
            append(conn, chain, f"thing.done.{n}")
    rest = lines_of(ExportRange(chain, 4, 13))
    assert [r["seq"] for r in first] == [1, 2, 3, 4]
    assert [r["seq"] for r in rest if r["kind"] == "event"] == list(range(5, 14))
    assert rest[0]["prev_hash"] == first[-1]["hash"]
    assert [r["seq"] for r in rest if r["kind"] == "checkpoint"] == [10]
    assert export_verify(json.dumps(r) for r in first + rest).ok
    resumed = export_verify(json.dumps(r) for r in rest)  # on its own: from its first event's link
    assert resumed.ok and resumed.signed_seq == 10


def test_a_checkpoint_signed_after_an_export_comes_with_the_next_one(chain):
    lines_of(ExportRange(chain, 0, 10))  # nothing signed yet
    committed(audit_checkpoint_sign, chain)
    with app_connection() as conn:
        append(conn, chain, "thing.done.11")
    rest = lines_of(ExportRange(chain, 10, 11))
    assert [(r["kind"], r["seq"]) for r in rest] == [("event", 11), ("checkpoint", 10)]
    verdict = export_verify(json.dumps(r) for r in rest)
    assert verdict.ok and verdict.signed_seq == 10  # #10's hash is #11's prev_hash


def test_batches_are_read_each_in_a_scope_of_their_own_outside_any_transaction(chain):
    # On a connection of its own, in autocommit: a streamed response's situation after its view.
    records = committed(lambda: lines_of(ExportRange(chain, 0, 10), batch=3))
    assert [r["seq"] for r in records] == list(range(1, 11))
    assert committed(lambda: connection.in_atomic_block) is False


@pytest.mark.parametrize(
    "action, expected",
    [
        ("auth.login", (3002, 1, "Logon")),
        ("auth.login.failed", (3002, 1, "Logon")),
        ("auth.logout", (3002, 2, "Logoff")),
        ("member.added", (3001, 1, "Create")),
        ("member.removed", (3001, 6, "Delete")),
        ("member.role_changed", (3001, 99, "Other")),
        ("token.issued", (6003, 1, "Create")),
        ("audit.export", (6003, 2, "Read")),
        ("agent.deploy", (6003, 3, "Update")),
        ("token.revoked", (6003, 4, "Delete")),
        ("thing.done.1", (6003, 99, "Other")),
    ],
)
def test_actions_map_to_ocsf_classes_and_activities(action, expected):
    (class_uid, *_), activity_id, activity_name = ocsf_class(action)
    assert (class_uid, activity_id, activity_name) == expected


def test_ocsf_records_carry_the_mapped_fields_and_the_chain_in_unmapped(acme):
    head = chain_head(acme.pk)
    audit_record(
        action="auth.login.failed",
        actor="sso",
        target=("user", "7"),
        data={"reason": "bad password"},
        outcome="failure",
        chain=acme.pk,
    )
    audit_record(action="agent.deploy", actor="deployer", target=("agent", "triage"), chain=acme.pk)
    failed, deployed = lines_of(ExportRange(acme.pk, head, head + 2), "ocsf")
    event = audit_events(acme.schema_name, seq=head + 1)[0]
    assert failed == {
        "class_uid": 3002,
        "class_name": "Authentication",
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "activity_id": 1,
        "activity_name": "Logon",
        "type_uid": 300201,
        "type_name": "Authentication: Logon",
        "time": (event.occurred_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1),
        "severity_id": 3,
        "severity": "Medium",
        "status_id": 2,
        "status": "Failure",
        "status_detail": "failure",
        "message": "auth.login.failed",
        "actor": {"user": {"uid": "service:sso", "type_id": 3, "type": "System"}},
        "metadata": {
            "version": "1.3.0",
            "uid": f"{acme.pk}:{head + 1}:{failed['unmapped']['hash'][:16]}",
            "sequence": head + 1,
            "tenant_uid": str(acme.pk),
            "log_name": "audit",
            "product": {"name": "Agent Foundry", "vendor_name": "Agent Foundry", "feature": {"name": "Audit trail"}},
        },
        "user": {"uid": "7"},
        "unmapped": {
            "kind": "event",
            "chain": acme.pk,
            "seq": head + 1,
            "occurred_at": failed["unmapped"]["occurred_at"],
            "actor_type": "service",
            "action": "auth.login.failed",
            "outcome": "failure",
            "target_type": "user",
            "target_id": "7",
            "request_id": "",
            "details": {"reason": "bad password"},
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        },
    }
    assert deployed["class_uid"] == 6003 and deployed["type_uid"] == 600303
    assert deployed["api"] == {"operation": "agent.deploy", "service": {"name": "Agent Foundry"}}
    assert deployed["resources"] == [{"type": "agent", "uid": "triage"}]
    assert (deployed["status"], deployed["severity_id"]) == ("Success", 1)


def test_ocsf_exports_verify_offline_too(chain):
    committed(audit_checkpoint_sign, chain)
    records = lines_of(ExportRange(chain, 0, 10), "ocsf")
    assert records[-1]["class_uid"] == 0 and records[-1]["unmapped"]["kind"] == "checkpoint"
    assert records[-1]["metadata"]["uid"] == f"{chain}:checkpoint:10:test1:{records[-1]['unmapped']['hash'][:16]}"
    verdict = export_verify(json.dumps(r) for r in records)
    assert verdict.ok and verdict.signed_seq == 10


def test_offline_verification_names_what_was_changed_in_the_file(chain):
    committed(audit_checkpoint_sign, chain)
    records = lines_of(ExportRange(chain, 0, 10))
    altered = [dict(r) for r in records]
    altered[3]["details"] = {"n": 400}
    dropped = records[:5] + records[6:]
    first = export_verify(json.dumps(r) for r in altered).first
    assert (first.seq, first.kind) == (4, "altered")
    assert [(p.seq, p.kind) for p in export_verify(json.dumps(r) for r in dropped).problems][:2] == [
        (6, "missing"),
        (7, "link_broken"),
    ]
    keys = {"test1": public_keys()["test1"][:-4] + "AAA="}  # someone else's key under the same id
    assert export_verify((json.dumps(r) for r in records), keys=keys).first.kind == "signature_invalid"
    truncated = records[:8] + records[10:]  # the last events cut, the checkpoint kept
    assert export_verify(json.dumps(r) for r in truncated).first.kind == "truncated"


# --- the API ----------------------------------------------------------------------------------


def export(client, **params):
    query = "&".join(
        f"{k}={v}" for k, values in params.items() for v in ([values] if isinstance(values, str | int) else values)
    )
    return client.get(f"/api/v1/audit/export?{query}")


def body_of(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_an_auditor_token_with_the_read_scope_exports_the_workspace_chain(acme):
    for n in range(3):
        audit_record(action="thing.exported", actor="test", data={"n": n}, chain=acme.pk)
    client = api(acme, issue(acme, role="admin", scopes=["read"]))  # token.issued: one more event
    head = chain_head(acme.pk)
    response = export(client, format="jsonl", after=head - 3)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert (response["X-Audit-Chain"], response["X-Audit-After"], response["X-Audit-Through"]) == (
        str(acme.pk),
        str(head - 3),
        str(head),
    )
    assert response["Content-Disposition"] == f'attachment; filename="audit-acme-{head - 2}-{head}.jsonl"'
    records = body_of(response)
    assert [r["seq"] for r in records] == [head - 2, head - 1, head]
    assert [r["id"] for r in records] == [f"{acme.pk}:{r['seq']}:{r['hash'][:16]}" for r in records]
    assert [r["action"] for r in records] == ["thing.exported", "thing.exported", "token.issued"]
    recorded = audit_events(acme.schema_name, action="audit.export")[-1]
    assert recorded.seq == head + 1  # after the range: the next export carries it
    assert recorded.data == {"format": "jsonl", "after": head - 3, "through": head}
    assert recorded.actor_type == "token"


def test_the_ocsf_export_and_its_cursor_through_the_api(acme, owner_client):
    head = chain_head(acme.pk)
    first = body_of(export(owner_client, format="ocsf", after=head - 1))
    assert [r["metadata"]["uid"] for r in first] == [f"{acme.pk}:{head}:{first[0]['unmapped']['hash'][:16]}"]
    second = body_of(export(owner_client, format="ocsf", after=head))
    assert [r["unmapped"]["action"] for r in second] == ["audit.export"]  # the first export, recorded
    assert second[0]["unmapped"]["prev_hash"] == first[0]["unmapped"]["hash"]
    assert body_of(export(owner_client, after=head + 2, checkpoints="false")) == []  # nothing new yet


def test_an_export_of_acme_never_holds_globex_rows(acme, globex):
    with schema_context(globex.schema_name):
        audit_record(action="globex.secret.thing", actor="test", data={"marker": "GLOBEX-ONLY"})
    response = export(api(acme, issue(acme)))
    text = b"".join(response.streaming_content).decode()
    records = [json.loads(line) for line in text.splitlines()]
    assert {r["chain"] for r in records if r["kind"] == "event"} == {acme.pk}
    assert {r["tenant_id"] for r in records if r["kind"] == "checkpoint"} <= {acme.pk}
    assert "GLOBEX-ONLY" not in text and "globex.secret.thing" not in text
    assert len([r for r in records if r["kind"] == "event"]) == chain_head(acme.pk) - 1  # all but its own record
    # globex's token means nothing on acme's host.
    assert export(api(acme, issue(globex))).status_code == 401


@pytest.mark.parametrize(
    "params, code",
    [
        ({"format": "xml"}, "format_invalid"),
        ({"format": "JSONL"}, "format_invalid"),
        ({"after": "-1"}, "cursor_invalid"),
        ({"after": "abc"}, "cursor_invalid"),
        ({"after": "1.5"}, "cursor_invalid"),
        ({"after": "٣"}, "cursor_invalid"),  # a digit, but not ASCII
        ({"after": "9223372036854775808"}, "cursor_invalid"),
        ({"after": "9223372036854775807"}, "cursor_beyond_head"),
        ({"checkpoints": "maybe"}, "checkpoints_invalid"),
        ({"after": ["1", "2"]}, "cursor_invalid"),
        ({"format": ["jsonl", "ocsf"]}, "format_invalid"),
    ],
)
def test_bad_input_is_a_400_with_a_stable_code_and_records_nothing(acme, params, code):
    before = audit_events(acme.schema_name, action="audit.export")
    response = export(api(acme, issue(acme)), **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert audit_events(acme.schema_name, action="audit.export") == before


@pytest.mark.parametrize(
    "role, scopes",
    [("developer", ["read", "write", "run", "admin"]), ("viewer", ["read"]), ("admin", ["run", "write"])],
)
def test_roles_without_audit_view_and_tokens_without_read_are_refused(acme, role, scopes):
    response = export(api(acme, issue(acme, role=role, scopes=scopes)))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_the_console_user_needs_audit_view_too(acme):
    assert export(client_for(acme, "viewer@acme.test")).status_code == 403
    assert export(client_for(acme, "admin@acme.test")).status_code == 200


def test_the_streamed_response_reads_many_batches_through_a_real_server(live_port, fresh_tenant, django_db_blocker):
    with django_db_blocker.unblock():
        token = issue(fresh_tenant, role="owner", scopes=["read"])
        with app_connection() as conn:
            for n in range(2500):
                append(conn, fresh_tenant.pk, f"load.{n}")
        head = chain_head(fresh_tenant.pk)
        audit_checkpoint_sign(fresh_tenant.pk)
    request = urllib.request.Request(
        f"http://127.0.0.1:{live_port}/api/v1/audit/export?format=jsonl",
        headers={"Host": f"{fresh_tenant.slug}.localhost", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert "Content-Length" not in response.headers  # streamed
        lines = response.read().decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [*range(1, head + 1), head]  # events, then the checkpoint
    verdict = export_verify(lines)
    assert verdict.ok and verdict.signed_seq == head


# --- the command ------------------------------------------------------------------------------


def test_the_command_writes_an_export_and_checkpoints_that_audit_verify_reads(acme, tmp_path):
    committed(audit_checkpoint_sign, acme.pk)
    head = chain_head(acme.pk)
    events, signed = tmp_path / "acme.ocsf.jsonl", tmp_path / "checkpoints.jsonl"
    arguments = ["--tenant", "acme", "--format", "ocsf", "--after", "1", "--output", events, "--checkpoints", signed]
    call_command("audit_export", *map(str, arguments), stderr=StringIO())
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [r["metadata"]["sequence"] for r in records] == list(range(2, head + 1))
    checkpoints = [json.loads(line) for line in signed.read_text().splitlines()]
    assert checkpoints and set(checkpoints[-1]) == {"tenant_id", "seq", "hash", "signed_at", "key_id", "signature"}
    out = StringIO()
    call_command("audit_verify", "--tenant", "acme", "--checkpoints", str(signed), stdout=out)
    assert "intact" in out.getvalue()
    assert audit_events(acme.schema_name, action="audit.export")[-1].actor_id == "service:cli:audit_export"


def test_the_command_writes_the_platform_chain_to_stdout(db):
    # The platform chain: only operators with shell access export it.
    out = StringIO()
    call_command("audit_export", "--platform", stdout=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records and {r["chain"] for r in records if r["kind"] == "event"} == {0}
    assert datetime.fromisoformat(records[0]["occurred_at"].replace("Z", "+00:00")) <= datetime.now(UTC)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tenant", "nobody"], "No tenant with slug 'nobody'."),
        (["--tenant", "acme", "--after", "99999999"], "after must be at most"),
        (["--tenant", "acme", "--output", "/nonexistent/dir/x.jsonl"], "No such file or directory"),
    ],
)
def test_the_command_refuses_bad_arguments(acme, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("audit_export", *args)
