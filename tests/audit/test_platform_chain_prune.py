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
