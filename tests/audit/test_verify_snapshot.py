"""`audit_verify` reads the chain's checkpoints, head and base, then walks its events: a retention
prune that commits in between (the nightly pass, while the console's badge or the API's verify
runs) does not make an intact chain look BROKEN — one REPEATABLE READ snapshot where it opens
the transaction, and inside a caller's READ COMMITTED one, the verification made again when the
chain's start moved while it ran (as here: the test's own transaction)."""

from django.utils import timezone

import apps.audit.verify as verify_module
from apps.audit.services import audit_checkpoint_sign, audit_prune
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append, chain_age, committed


def test_a_prune_committed_while_a_verification_runs_is_not_reported_as_a_break(chain, monkeypatch):
    chain_age(chain, 10)  # #1-#10 ten days old
    committed(audit_checkpoint_sign, chain)  # signed at #10
    with app_connection() as conn:
        append(conn, chain, "thing.done.11")  # now
    assert audit_verify(chain).ok

    walk = verify_module._walk
    pruned = []

    def walk_after_a_prune(*args, **kwargs):
        # The retention pass's prune commits on its own connection, between the base's read and the
        # (first) walk.
        if not pruned:
            pruned.append(committed(audit_prune, tenant_id=chain, before=timezone.now()))
        return walk(*args, **kwargs)

    monkeypatch.setattr(verify_module, "_walk", walk_after_a_prune)
    result = audit_verify(chain)
    monkeypatch.setattr(verify_module, "_walk", walk)
    assert pruned == [10]
    assert audit_verify(chain).ok  # the chain is intact before and after the prune
    assert result.ok, f"an intact chain reported broken: {result.summary()} {result.problems[:3]}"
