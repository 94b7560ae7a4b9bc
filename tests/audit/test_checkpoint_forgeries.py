"""The signer takes nothing the app role can write on trust (found by the signing review):

- A checkpoint row already stored for the head (the app role may insert checkpoints) counted as
  "signed" whatever it held, and was copied to the file kept outside the database: rows inserted
  ahead for the next heads kept the platform from signing them and filled the file with junk. Now
  only the platform's own signature of that event counts; another is neither taken nor copied, and
  the head is signed once the chain moves on.
- A chain's base (the app role's too) naming another chain's id had the platform sign this
  chain's event as that chain's, and the other chain's base, naming this one in `signed_as`, then
  took the checkpoint for its own: the platform's signature "proved" the victim truncated. Now the
  head event must be hashed under the id the base names, or nothing is signed."""

import json
import random

from apps.audit.models import AuditCheckpoint
from apps.audit.services import audit_checkpoint_sign
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append, committed


def test_a_checkpoint_row_inserted_by_hand_is_not_taken_for_the_platforms_signature(chain, settings, tmp_path):
    settings.FOUNDRY_AUDIT_CHECKPOINT_DIR = str(tmp_path)
    with app_connection() as conn:
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        conn.execute(
            "INSERT INTO audit_auditcheckpoint (tenant_id, seq, hash, signed_at, key_id, signature)"
            " VALUES (%s, 11, repeat('f', 64), now(), 'test1', 'AAAA')",
            [chain],
        )
        append(conn, chain, "thing.done.11")
    assert committed(audit_checkpoint_sign, chain) is None
    assert not (tmp_path / f"chain-{chain}.jsonl").exists(), "the hand-made row was copied to the file"

    with app_connection() as conn:
        append(conn, chain, "thing.done.12")
    checkpoint = committed(audit_checkpoint_sign, chain)
    assert checkpoint is not None and checkpoint.seq == 12
    assert audit_verify(chain).signed_seq == 12
    lines = [json.loads(line) for line in (tmp_path / f"chain-{chain}.jsonl").read_text().splitlines()]
    assert [(line["seq"], line["signature"] != "AAAA") for line in lines] == [(12, True)]


def test_a_checkpoint_signed_for_one_chain_is_not_taken_by_another_through_its_signed_as(chain):
    victim = chain  # 10 events
    attacker = random.randint(3 * 10**9, 4 * 10**9)
    with app_connection() as conn:
        for n in range(12):
            append(conn, attacker, f"attacker.thing.{n}")
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(attacker)])
        conn.execute(
            "INSERT INTO audit_auditchainbase (tenant_id, hash_tenant_id, first_seq, first_prev_hash, updated_at)"
            " VALUES (%s, %s, 1, repeat('0', 64), now())",
            [attacker, victim],
        )
    assert committed(audit_checkpoint_sign, attacker) is None  # its events are not hashed as the victim's
    assert not AuditCheckpoint.objects.filter(tenant_id=attacker).exists()

    # Nothing signed for the attacker's events as the victim's: there is no checkpoint for the
    # victim's base (naming the attacker in `signed_as`) to take; the victim is intact.
    assert audit_verify(victim).ok
