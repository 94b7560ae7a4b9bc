"""The chain head as a witness (verify reports a re-hashed last event the head contradicts, and
events forged after it), checkpoint files read with care, an export resuming after the unlogged
head was lost, and a tampered event shown (API, console) rather than a 500."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.chain import event_hash
from apps.audit.export import audit_export_start
from apps.audit.verify import audit_verify
from foundry.errors import ServiceError
from tests.api.conftest import api, issue
from tests.conftest import client_for

ROW = (
    "SELECT seq, occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, ip, user_agent,"
    " request_id, details, prev_hash, hash FROM audit_auditevent WHERE tenant_id = %s AND seq = %s"
)
NAMES = ["actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip", "user_agent",
         "request_id", "details"]  # fmt: skip


def tamper(superuser, sql, params=()):
    """As an attacker with superuser access: triggers off for this statement."""
    superuser.execute("SET session_replication_role = replica")
    superuser.execute(sql, params)
    superuser.execute("SET session_replication_role = origin")


def rehashed(superuser, chain, seq, **changes):
    """Event `seq` of `chain` with `changes`, and the hash it then has (the algorithm is public)."""
    _seq, at, *rest, prev, _hash = superuser.execute(ROW, [chain, seq]).fetchone()
    fields = dict(zip(NAMES, rest, strict=True)) | changes
    return at, fields, prev, event_hash(tenant_id=chain, seq=seq, occurred_at=at, prev_hash=prev, **fields)


# --- verification ------------------------------------------------------------------------------


def test_verify_detects_a_rehashed_last_event_that_the_chain_head_contradicts(superuser, chain):
    _at, fields, _prev, digest = rehashed(superuser, chain, 10, action="nothing.happened")
    tamper(superuser, "UPDATE audit_auditevent SET action = %s, hash = %s WHERE tenant_id = %s AND seq = 10",
           [fields["action"], digest, chain])  # fmt: skip
    head_seq, head_hash = superuser.execute(
        "SELECT seq, hash FROM audit_auditchain WHERE tenant_id = %s", [chain]
    ).fetchone()
    assert head_seq == 10 and head_hash != digest  # the head still names the original #10
    result = audit_verify(chain)
    assert not result.ok, "edited last event not detected although the chain head's hash differs"


def test_verify_detects_a_forged_event_inserted_after_the_chain_head(superuser, chain):
    at, fields, _prev, _ = rehashed(superuser, chain, 10, action="forged.event")
    last_hash = superuser.execute(ROW, [chain, 10]).fetchone()[-1]
    digest = event_hash(tenant_id=chain, seq=11, occurred_at=at, prev_hash=last_hash, **fields)
    tamper(
        superuser,
        "INSERT INTO audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,"
        " target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)"
        " VALUES (%s, 11, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [chain, at, *fields.values(), last_hash, digest],
    )
    assert superuser.execute("SELECT seq FROM audit_auditchain WHERE tenant_id = %s", [chain]).fetchone()[0] == 10
    result = audit_verify(chain)
    assert not result.ok, "an event inserted beyond the chain head verifies as intact"


def test_audit_verify_command_refuses_a_malformed_checkpoint_file_with_a_command_error(tmp_path, acme):
    checkpoint = {
        "tenant_id": acme.pk,
        "seq": 1,
        "hash": "0" * 64,
        "signed_at": "yesterday",
        "key_id": "k",
        "signature": "s",
    }
    path = tmp_path / "chain.jsonl"
    path.write_text(json.dumps(checkpoint) + "\n")
    with pytest.raises(CommandError):
        call_command("audit_verify", "--tenant", "acme", "--checkpoints", str(path), stdout=StringIO())


# --- append-only ------------------------------------------------------------------------------------


def test_an_export_resumes_after_the_unlogged_head_was_lost(superuser, chain):
    tamper(superuser, "DELETE FROM audit_auditchain WHERE tenant_id = %s", [chain])  # what a crash does
    try:
        span = audit_export_start(tenant_id=chain, fmt="jsonl", after=5)
    except ServiceError as e:
        pytest.fail(f"export after=5 of a 10-event chain refused: {e.code}")
    assert span.through == 10


# --- tampered rows in the API and console -----------------------------------------------------------


@pytest.fixture
def acme_first_event_not_json(superuser, acme):
    """acme's #1 (committed at setup) with its details edited to text that is not JSON; restored after."""
    (old,) = superuser.execute(
        "SELECT details FROM audit_auditevent WHERE tenant_id = %s AND seq = 1", [acme.pk]
    ).fetchone()
    tamper(superuser, "UPDATE audit_auditevent SET details = 'not json' WHERE tenant_id = %s AND seq = 1", [acme.pk])
    yield
    tamper(superuser, "UPDATE audit_auditevent SET details = %s WHERE tenant_id = %s AND seq = 1", [old, acme.pk])


def test_the_events_api_lists_a_tampered_event_instead_of_a_500(acme, acme_first_event_not_json):
    client = api(acme, issue(acme, role="admin", scopes=("read",)))
    client.raise_request_exception = False
    response = client.get("/api/v1/audit/events", {"filter": "seq <= 3"})
    assert response.status_code == 200, response.status_code


def test_the_console_shows_a_tampered_event_instead_of_a_500(acme, acme_first_event_not_json):
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    response = client.get("/audit/events/1/")
    assert response.status_code == 200, response.status_code
