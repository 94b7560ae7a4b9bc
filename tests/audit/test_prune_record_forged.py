"""`prune_unrecorded` (verify.py) names a chain cut by hand the way the owner's prune cuts it
(rows up to a signed checkpoint, the base moved). The `audit.pruned` event it looks for is
appended by the owner's prune only: `audit_append` refuses that action from the app role
(migration 0014), so a hand-made cut cannot be excused after the fact."""

import psycopg
import pytest

from apps.audit.services import audit_checkpoint_sign
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append, committed


def test_a_hand_made_cut_is_not_excused_by_an_audit_pruned_event_the_app_role_appended(chain, superuser):
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

    # The app role's own append of the event the owner's prune would have written.
    with app_connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="owner's prune only"):
        conn.execute(
            "SELECT seq FROM public.audit_append(%s, 'service', 'service:audit.prune', 'audit.pruned', 'audit.chain',"
            " %s, 'success', '', '', '', %s, NULL, NULL)",
            [chain, str(chain), '{"before":"2026-01-01T00:00:00.000000Z","deleted":10,"first_seq":11,"role":"x"}'],
        )
    assert [p.kind for p in audit_verify(chain).problems] == ["prune_unrecorded"]
