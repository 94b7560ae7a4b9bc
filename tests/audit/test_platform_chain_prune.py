"""The platform's chain (0: tenant provisioning, suspension, deletion scheduling, operators'
actions) has no retention policy, and holds what guards a workspace's purge: the owner's
`audit_chain_prune` refuses it, whoever asks (SQL injected into the application included)."""

from datetime import UTC, datetime

import psycopg
import pytest

from apps.audit.models import PLATFORM
from apps.audit.services import audit_checkpoint_sign
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append, chain_age, committed

COLUMNS = (
    "tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, ip,"
    " user_agent, request_id, details, prev_hash, hash"
)
# What the owner's prune would append, made by hand (a superuser is not bound by the events'
# Row-Level Security policy), hash-consistent with the head, the head moved past it.
FORGED_PRUNED = """
WITH head AS (
    UPDATE public.audit_auditchain c SET seq = c.seq + 1, prev_hash = c.hash, updated_at = now(),
           hash = public.audit_event_hash(c.tenant_id, c.seq + 1, now(), 'service', 'service:audit.prune',
               'audit.pruned', 'audit.chain', '0', 'success', '', '', '', %(details)s, c.hash)
     WHERE c.tenant_id = 0
    RETURNING c.seq, c.prev_hash, c.hash, c.updated_at
)
INSERT INTO public.audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action, target_type,
    target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)
SELECT 0, seq, updated_at, 'service', 'service:audit.prune', 'audit.pruned', 'audit.chain',
       '0', 'success', '', '', '', %(details)s, prev_hash, hash FROM head
"""


def test_the_app_role_cannot_prune_the_platform_chain_unseen(db):
    with app_connection() as conn:
        append(conn, PLATFORM, "tenant.deletion_scheduled", actor="operator:1")
    chain_age(PLATFORM, 10)  # a platform trail written over the last days
    committed(audit_checkpoint_sign, PLATFORM)
    with app_connection() as conn:
        append(conn, PLATFORM, "operator.login", actor="operator:1")  # today
    assert audit_verify(PLATFORM).ok

    with app_connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="not pruned"):
        conn.execute("SELECT public.audit_chain_prune(%s, %s)", [PLATFORM, datetime.now(UTC)])  # the app role
    result = audit_verify(PLATFORM)
    assert result.ok and result.events >= 2, result.summary()


def test_a_platform_chain_cut_by_hand_with_a_forged_prune_record_is_not_intact(superuser):
    """A superuser deletes the platform chain's events up to a signed checkpoint (operators'
    actions, the purge gate's scheduling events), moves the chain's base, and appends an
    `audit.pruned` event of his own (any SHA-256 can be computed without a key). No prune ever
    cuts chain 0 (the owner's refuses it), so whatever `audit.pruned` event it holds, a platform
    chain that no longer starts at #1 is broken there: #1 is missing."""
    with app_connection() as conn:
        for n in range(3):
            append(conn, PLATFORM, f"tenant.deletion_scheduled.{n}", actor="operator:1")
    checkpoint = committed(audit_checkpoint_sign, PLATFORM)
    assert checkpoint is not None
    with app_connection() as conn:
        append(conn, PLATFORM, "operator.login", actor="operator:1")
    assert audit_verify(PLATFORM).ok
    cut = checkpoint.seq

    su = superuser
    saved = su.execute(f"SELECT {COLUMNS} FROM audit_auditevent WHERE tenant_id = 0 AND seq <= %s", [cut]).fetchall()
    base_before = su.execute("SELECT * FROM audit_auditchainbase WHERE tenant_id = 0").fetchall()
    head_before = su.execute("SELECT seq, hash, prev_hash FROM audit_auditchain WHERE tenant_id = 0").fetchone()
    su.execute("SET session_replication_role = replica")
    try:
        su.execute("DELETE FROM audit_auditevent WHERE tenant_id = 0 AND seq <= %s", [cut])
        su.execute(
            "INSERT INTO audit_auditchainbase (tenant_id, hash_tenant_id, first_seq, first_prev_hash, updated_at)"
            " VALUES (0, 0, %s, %s, now()) ON CONFLICT (tenant_id) DO UPDATE"
            " SET first_seq = EXCLUDED.first_seq, first_prev_hash = EXCLUDED.first_prev_hash",
            [cut + 1, checkpoint.hash],
        )
        su.execute(FORGED_PRUNED, {"details": f'{{"deleted":{cut},"first_seq":{cut + 1},"role":"foundry_owner"}}'})
        result = audit_verify(PLATFORM)
        assert [(p.seq, p.kind) for p in result.problems] == [(1, "missing")], result.summary()
    finally:
        with su.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE tenant_id = 0 AND seq > %s", [head_before[0]])
            cursor.executemany(f"INSERT INTO audit_auditevent ({COLUMNS}) VALUES ({', '.join(['%s'] * 15)})", saved)
            cursor.execute(
                "UPDATE audit_auditchain SET seq = %s, hash = %s, prev_hash = %s WHERE tenant_id = 0", head_before
            )
            cursor.execute("DELETE FROM audit_auditchainbase WHERE tenant_id = 0")
            for row in base_before:
                cursor.execute(f"INSERT INTO audit_auditchainbase VALUES ({', '.join(['%s'] * len(row))})", row)
        su.execute("SET session_replication_role = origin")
    assert audit_verify(PLATFORM).ok
