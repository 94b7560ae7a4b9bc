"""A purge racing the platform's own periodic writers of public tenant_id tables leaves no row of
the purged workspace behind: the hourly usage roll-up holds the workspace's row (KEY SHARE),
which the purge takes FOR UPDATE, and the head's signer holds the chain's head row, which the
owner's purge of the chain locks before it deletes (audit migrations/0015). Each waits for the
purge and then finds nothing to write, or the purge waits for it and deletes what it wrote.

Real threads, each with its own connection, against committed data.
"""

import threading
import time
from datetime import timedelta

from django.db import connection, connections
from django.utils import timezone

from apps.billing.rollups import today, usage_rollup
from apps.lifecycle import deletion
from apps.lifecycle.deletion import tenant_deletion_schedule, tenant_purge
from apps.lifecycle.erasing import erasing
from apps.runs.usage import usage_record

OPERATOR = "operator:1"


def _rows(table: str, tenant_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('foundry.tenant_ids', %s, false), set_config('foundry.tenant_id', %s, false)",
            [str(tenant_id)] * 2,
        )
        cursor.execute(f"SELECT count(*) FROM public.{table} WHERE tenant_id = %s", [tenant_id])
        n = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('foundry.tenant_ids', '', false), set_config('foundry.tenant_id', '', false)")
    return n


def _cleanup(tenant_id: int) -> None:
    from django.db import transaction

    with transaction.atomic(), erasing(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('foundry.tenant_ids', %s, true)", [str(tenant_id)])
        for table in ("billing_usage_day", "billing_usage_month", "billing_usage"):
            cursor.execute(f"DELETE FROM public.{table} WHERE tenant_id = %s", [tenant_id])


def purge_racing(tenant, monkeypatch, write) -> dict:
    """Purge `tenant`, letting `write` in on a thread (its own connection) just after the purge
    deleted the workspace's rows, before it commits; what `write` returned ({"done": ...}) or
    raised ({"error": ...})."""
    outcome: dict = {}

    def writer():
        try:
            outcome["done"] = write()
        except Exception as exc:  # noqa: BLE001 - the caller asserts the outcome
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    original = deletion._database_purge

    def purge_then_let_the_writer_in(tenant, purged):
        original(tenant, purged)
        thread.start()
        time.sleep(1.0)  # the writer gets as far as it can while the purge is not committed

    monkeypatch.setattr(deletion, "_database_purge", purge_then_let_the_writer_in)
    tenant_purge(tenant=tenant, actor=OPERATOR)
    thread.join(30)
    assert not thread.is_alive()
    return outcome


def test_a_usage_rollup_racing_a_purge_leaves_no_rows_of_the_purged_workspace(
    fresh_tenant, django_db_blocker, monkeypatch
):
    tenant_id = fresh_tenant.pk
    with django_db_blocker.unblock():
        usage_record(
            tenant_id=tenant_id,
            project="p",
            agent="a",
            run_id=None,
            step=0,
            provider="scripted",
            model="scripted",
            input_tokens=10,
            output_tokens=5,
            created_at=timezone.now() - timedelta(seconds=5),
        )
        assert _rows("billing_usage", tenant_id) == 1
        tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)

        try:
            outcome = purge_racing(fresh_tenant, monkeypatch, lambda: usage_rollup(tenant_id=tenant_id, day=today()))
            left = _rows("billing_usage_day", tenant_id)
        finally:
            _cleanup(tenant_id)

    assert outcome == {"done": 0}  # it waited for the purge, then found no workspace to roll up
    assert left == 0, f"{left} billing_usage_day row(s) of purged workspace {tenant_id} remain"


def test_a_head_signing_racing_a_purge_leaves_no_checkpoint_of_the_purged_workspace(
    fresh_tenant, django_db_blocker, monkeypatch, settings
):
    """`audit.sign_heads` (beat, every FOUNDRY_AUDIT_SIGN_INTERVAL) signs every tenant's chain,
    DELETING ones included; scheduling the deletion moved the chain's head, so the next pass
    signs it. A pass that reads the head before the purge commits inserts its checkpoint after
    the purge deleted the chain: an append-only row of a workspace that no longer exists."""
    from apps.audit.services import audit_checkpoint_sign

    settings.FOUNDRY_AUDIT_SIGNING_KEYS = ["test1:" + "A" * 43]
    settings.FOUNDRY_AUDIT_PUBLIC_KEYS = []
    tenant_id = fresh_tenant.pk
    with django_db_blocker.unblock():
        tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
        outcome = purge_racing(fresh_tenant, monkeypatch, lambda: audit_checkpoint_sign(tenant_id))
        left = _rows("audit_auditcheckpoint", tenant_id)

    assert outcome == {"done": None}  # it waited for the purge, then found no head to sign

    assert left == 0, f"{left} audit_auditcheckpoint row(s) of purged workspace {tenant_id} remain"


def test_an_audit_append_racing_a_purge_leaves_no_event_of_the_purged_workspace(
    fresh_tenant, django_db_blocker, monkeypatch
):
    """An append to the workspace's chain that waits for the purge (on the chain's lock) finds the
    head gone; it must not start the chain afresh (audit migrations/0017)."""
    from django.db import DatabaseError

    from apps.audit.services import audit_record

    tenant_id = fresh_tenant.pk
    with django_db_blocker.unblock():
        tenant_deletion_schedule(tenant=fresh_tenant, actor=OPERATOR, grace_days=0)
        outcome = purge_racing(
            fresh_tenant, monkeypatch, lambda: audit_record(action="thing.late", actor="runs", chain=tenant_id)
        )
        left = _rows("audit_auditevent", tenant_id), _rows("audit_auditchain", tenant_id)

    assert set(outcome) == {"error"} and isinstance(outcome["error"], DatabaseError), outcome
    assert "was purged" in str(outcome["error"])
    assert left == (0, 0), f"events and heads of purged workspace {tenant_id} remain: {left}"
