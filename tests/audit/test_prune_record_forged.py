"""`prune_unrecorded` (verify.py) names a chain cut by hand the way the owner's prune cuts it
(rows up to a signed checkpoint, the base moved). The `audit.pruned` event it looks for is
written by the owner's prune only: the events' Row-Level Security policy refuses that action from
any other role, through `audit_append` or a plain INSERT (migration 0016), so a hand-made cut
cannot be excused after the fact."""

import psycopg
import pytest

from apps.audit.services import audit_checkpoint_sign
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append, committed

PRUNED_DETAILS = '{"before":"2026-01-01T00:00:00.000000Z","deleted":10,"first_seq":11,"role":"x"}'
# The event the owner's prune would have written, hash-consistent with the chain's head, as a plain
# INSERT (the app role holds INSERT on the table) with the head moved past it in the same transaction.
_FORGED = """
WITH head AS (
    UPDATE public.audit_auditchain c SET seq = c.seq + 1, prev_hash = c.hash, updated_at = now(),
           hash = public.audit_event_hash(c.tenant_id, c.seq + 1, now(), 'service', 'service:audit.prune',
               'audit.pruned', 'audit.chain', c.tenant_id::text, 'success', '', '', '', %(details)s, c.hash)
     WHERE c.tenant_id = %(chain)s
    RETURNING c.seq, c.prev_hash, c.hash, c.updated_at
)
INSERT INTO public.audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,
    target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)
SELECT %(chain)s, seq, updated_at, 'service', 'service:audit.prune', 'audit.pruned', 'audit.chain',
       %(chain)s::text, 'success', '', '', '', %(details)s, prev_hash, hash FROM head
"""


def cut_by_hand(chain: int, superuser) -> None:
    """#1-#10 deleted past the triggers, exactly as the prune cuts: the base at #11, signed at #10."""
    committed(audit_checkpoint_sign, chain)  # signed at #10
    with app_connection() as conn:
        append(conn, chain, "thing.done.11")
        append(conn, chain, "thing.done.12")
    # Cut by hand, past the triggers, exactly as the prune cuts: #1-#10 gone, the base at #11.
    superuser.execute("SET session_replication_role = replica")
    superuser.execute("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq <= 10", [chain])
    superuser.execute(
        "INSERT INTO audit_auditchainbase (tenant_id, hash_tenant_id, first_seq, first_prev_hash, updated_at)"
        " SELECT tenant_id, tenant_id, 11, hash, now() FROM audit_auditcheckpoint WHERE tenant_id = %s AND seq = 10",
        [chain],
    )
    superuser.execute("SET session_replication_role = origin")
    assert [p.kind for p in audit_verify(chain).problems] == ["prune_unrecorded"]


def test_a_hand_made_cut_is_not_excused_by_an_audit_pruned_event_the_app_role_appended(chain, superuser):
    cut_by_hand(chain, superuser)
    with app_connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        conn.execute(
            "SELECT seq FROM public.audit_append(%s, 'service', 'service:audit.prune', 'audit.pruned', 'audit.chain',"
            " %s, 'success', '', '', '', %s, NULL, NULL)",
            [chain, str(chain), PRUNED_DETAILS],
        )
    assert [p.kind for p in audit_verify(chain).problems] == ["prune_unrecorded"]


def test_a_hand_made_cut_is_not_excused_by_an_audit_pruned_row_the_app_role_inserted(chain, superuser):
    cut_by_hand(chain, superuser)
    with app_connection() as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), conn.transaction():
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(chain)])
            conn.execute(_FORGED, {"chain": chain, "details": PRUNED_DETAILS})
        # Any other action the app role may still insert so (audit_append is how the platform does).
        with conn.transaction():
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(chain)])
            conn.execute(_FORGED.replace("'audit.pruned'", "'thing.done'"), {"chain": chain, "details": "{}"})
    assert [p.kind for p in audit_verify(chain).problems] == ["prune_unrecorded"]
