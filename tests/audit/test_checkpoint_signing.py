"""What the beat job signs (audit_checkpoint_sign), and where it writes it: the stored event at the
head's seq under the chain's own id, never the head row's values (a cache the app role writes on
every append), and every checkpoint reaches the chain's file outside the database, also when the
pass that signed it could not write there."""

import json
import random
from datetime import UTC, datetime

import pytest

from apps.audit import tasks as audit_tasks
from apps.audit.chain import checkpoint_message
from apps.audit.models import AuditChain, AuditCheckpoint, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.audit.signing import signing_key
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append, committed


def _checkpoints(chain: int) -> list[int]:
    with rls_scope(chain):
        return list(AuditCheckpoint.objects.filter(tenant_id=chain).values_list("seq", flat=True))


def test_a_head_row_the_app_role_rewrote_is_not_signed(chain):
    """Injected SQL pointing its own head at a seq and hash of its choosing got them signed."""
    with app_connection() as conn:
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        conn.execute("UPDATE audit_auditchain SET seq = 5, hash = %s WHERE tenant_id = %s", ["e" * 64, chain])
    assert committed(audit_checkpoint_sign, chain) is None
    assert _checkpoints(chain) == []


def test_a_checkpoint_is_dated_by_the_databases_clock_never_before_its_event(chain, monkeypatch):
    """Events are dated by the database's clock; a checkpoint signed on a host whose clock runs an
    hour behind is dated by that clock too, never before the event it vouches for."""
    from datetime import timedelta

    from django.utils import timezone

    behind = timezone.now() - timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: behind)
    checkpoint = committed(audit_checkpoint_sign, chain)
    with rls_scope(chain):
        event_time = AuditEvent.objects.get(tenant_id=chain, seq=checkpoint.seq).occurred_at
    assert checkpoint.signed_at >= event_time > behind


# Two rows name the id a chain is hashed under, both the app role's to write: its head (a cache
# of every append) and its base (an imported chain's origin).
REPOINTED = {
    "head": "UPDATE audit_auditchain SET hash_tenant_id = %(victim)s WHERE tenant_id = %(chain)s",
    "base": "INSERT INTO audit_auditchainbase (tenant_id, hash_tenant_id, first_seq, first_prev_hash, updated_at)"
    " VALUES (%(chain)s, %(victim)s, 1, repeat('0', 64), now())",
}


@pytest.mark.parametrize("row", REPOINTED)
def test_a_chain_hashed_as_another_gets_no_signature_that_chain_accepts(chain, row):
    """A chain's hashed-as id made another chain's (by its head, or its base row: found by a
    review): the checkpoint signed for it, copied into the victim's trail, is a forged signature
    there (`signature_invalid`), not the platform's word that the victim's chain was rewritten. A
    checkpoint (version 2) names the chain it is for besides the id it is hashed under."""
    victim = random.randint(7 * 10**9, 8 * 10**9)
    with app_connection() as conn:
        for n in range(10):
            append(conn, victim, f"victim.thing.{n}")
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        conn.execute(REPOINTED[row], {"chain": chain, "victim": victim})
    checkpoint = committed(audit_checkpoint_sign, chain)
    if row == "base":  # its events are not hashed under the id its base names: nothing is signed
        assert checkpoint is None  # (tests/audit/test_checkpoint_forgeries.py)
        return
    assert checkpoint is not None
    with rls_scope(victim):
        victims = AuditEvent.objects.filter(tenant_id=victim, seq=checkpoint.seq).values_list("hash", flat=True).get()
    assert victims != checkpoint.hash
    forged = {
        "tenant_id": victim,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "signed_at": checkpoint.signed_at.isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }
    assert [p.kind for p in audit_verify(victim, external=[forged]).problems] == ["signature_invalid"]


def test_a_checkpoint_signed_as_version_1_still_verifies(chain):
    """Checkpoints signed before version 2 named the hashed-as id alone: they still verify (what
    the platform signed then, it signed), under the chain's id and no other."""
    with rls_scope(chain):
        head = AuditEvent.objects.filter(tenant_id=chain).order_by("-seq").values_list("seq", "hash").first()
    key, signed_at = signing_key(), datetime.now(UTC)
    message = checkpoint_message(
        chain_id=0, tenant_id=chain, seq=head[0], hash=head[1], signed_at=signed_at, version="1"
    )
    legacy = {
        "tenant_id": chain,
        "seq": head[0],
        "hash": head[1],
        "signed_at": signed_at.isoformat(),
        "key_id": key.key_id,
        "signature": key.sign(message),
    }
    assert audit_verify(chain, external=[legacy]).ok
    other = random.randint(8 * 10**9, 9 * 10**9)
    assert audit_verify(chain, external=[{**legacy, "tenant_id": other}]).problems[0].kind == "signature_invalid"


def test_a_checkpoint_whose_file_append_failed_is_written_by_the_next_pass(acme, settings, tmp_path):
    """The directory away (a network mount) when it was signed, or the worker lost between the
    commit and the write: the next pass, finding the head signed already, writes it then."""
    directory = tmp_path / "checkpoints"
    settings.FOUNDRY_AUDIT_CHECKPOINT_DIR = str(directory)
    audit_record(action="test.thing", actor="test", data={}, chain=acme.pk)
    with rls_scope(acme.pk):
        head = AuditChain.objects.get(tenant_id=acme.pk).seq
    directory.write_text("not a directory yet")
    audit_tasks.audit_sign_heads.apply().get()  # the failure is logged; the beat goes on
    assert head in _checkpoints(acme.pk)
    directory.unlink()
    audit_tasks.audit_sign_heads.apply().get()
    audit_tasks.audit_sign_heads.apply().get()  # written once
    lines = (directory / f"chain-{acme.pk}.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [head]
