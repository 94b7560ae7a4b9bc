"""What the beat job signs (audit_checkpoint_sign), and where it writes it: the stored event at the
head's seq under the chain's own id, never the head row's values (a cache the app role writes on
every append), and every checkpoint reaches the chain's file outside the database, also when the
pass that signed it could not write there."""

import json
import random

from apps.audit import tasks as audit_tasks
from apps.audit.models import AuditChain, AuditCheckpoint
from apps.audit.scope import rls_scope
from apps.audit.services import audit_checkpoint_sign, audit_record
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


def test_a_head_naming_another_chain_gets_no_signature_that_chain_accepts(chain):
    """The head's hash id made another chain's: the checkpoint is signed under this chain's own
    id, so copied into the victim's trail it is a forged signature there, not the platform's word."""
    victim = random.randint(7 * 10**9, 8 * 10**9)
    with app_connection() as conn:
        for n in range(10):
            append(conn, victim, f"victim.thing.{n}")
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        conn.execute("UPDATE audit_auditchain SET hash_tenant_id = %s WHERE tenant_id = %s", [victim, chain])
    checkpoint = committed(audit_checkpoint_sign, chain)
    assert checkpoint is not None and audit_verify(chain).ok
    forged = {
        "tenant_id": victim,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "signed_at": checkpoint.signed_at.isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }
    assert [p.kind for p in audit_verify(victim, external=[forged]).problems] == ["signature_invalid"]


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
