"""A legal hold set while a retention pass is going on (real threads, committed data)."""

import threading

import pytest
from django_tenants.utils import schema_context

from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.lifecycle import retention
from apps.lifecycle.retention import retention_apply, retention_policy_set
from tests.audit.conftest import chain_age
from tests.conftest import audit_events
from tests.lifecycle.test_retention import policy_set
from tests.races.conftest import run_together


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_a_legal_hold_committed_during_a_retention_pass_keeps_the_audit_trail(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """docs/retention.md: `audit_legal_hold`, "nothing [goes] while true, whatever audit_days says".
    The pass sweeps runs, checkpoints, usage and exports before it prunes the audit trail; a hold
    an admin commits (and is told is in force: `retention.updated`) meanwhile stops the prune: the
    policy is read again, locked, just before it."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        policy_set(tenant, audit_days=1, exports_days=7)
        chain_age(tenant.pk, 3)
        checkpoint = audit_checkpoint_sign(tenant.pk)
        with schema_context(tenant.schema_name):
            audit_record(action="test.after_checkpoint", actor="test")  # the chain's last event stays
        aged = [e.seq for e in audit_events(tenant.schema_name) if e.seq <= checkpoint.seq]
        assert aged

        sweeping = threading.Event()
        held = threading.Event()
        exports = retention._Sweep.exports

        def exports_slowly(self, before):  # an earlier kind of the pass, the audit prune still to come
            sweeping.set()
            held.wait(5)
            return exports(self, before)

        monkeypatch.setattr(retention._Sweep, "exports", exports_slowly)

        def hold():
            assert sweeping.wait(20)
            try:
                with schema_context(tenant.schema_name):
                    retention_policy_set(actor="compliance@example.test", audit_legal_hold=True)
            finally:
                held.set()

        results = run_together(lambda: retention_apply(tenant=tenant), hold)
        kept = [e.seq for e in audit_events(tenant.schema_name) if e.seq <= checkpoint.seq]
        updated = audit_events(tenant.schema_name, action="retention.updated")
    assert results[1][1] is None, results
    assert updated and updated[-1].data["changes"]["audit_legal_hold"] == [False, True]
    assert results[0][1] is None, results
    assert kept == aged, (
        f"{len(aged) - len(kept)} audit events were pruned after a legal hold on the trail was committed "
        f"(pass counts: {results[0][0]})"
    )
