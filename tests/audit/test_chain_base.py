"""A chain that does not start at #1 under its own id (models.AuditChainBase): one imported into a
new tenant keeps its hashes and signatures; one pruned by retention starts after a signed
checkpoint. Both verify, appends continue them, and their exports verify offline."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.export import ExportRange, export_lines, export_verify
from apps.audit.models import AuditChain, AuditCheckpoint, AuditEvent, AuditSink
from apps.audit.scope import rls_scope
from apps.audit.services import audit_chain_base_set, audit_checkpoint_sign, audit_prune
from apps.audit.verify import audit_verify
from foundry.db.roles import app_role
from tests.audit.conftest import app_connection, append, chain_age, committed

COLUMNS = (
    "seq, occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, ip, user_agent,"
    " request_id, details, prev_hash, hash"
)


def copy_chain(source: int, target: int) -> int:
    """What an import does: the source's events and checkpoints inserted as they are under `target`."""
    with app_connection() as conn, conn.transaction():
        conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(source)])
        events = conn.execute(f"SELECT {COLUMNS} FROM audit_auditevent ORDER BY seq").fetchall()
        checkpoints = conn.execute(
            "SELECT seq, hash, signed_at, key_id, signature FROM audit_auditcheckpoint"
        ).fetchall()
        conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(target)])
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO audit_auditevent (tenant_id, {COLUMNS}) VALUES (%s{', %s' * 14})",
                [(target, *row) for row in events],
            )
            cursor.executemany(
                "INSERT INTO audit_auditcheckpoint (tenant_id, seq, hash, signed_at, key_id, signature)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [(target, *row) for row in checkpoints],
            )
    return len(events)


@pytest.fixture
def imported(chain):
    committed(audit_checkpoint_sign, chain)
    target = random.randint(3 * 10**9, 4 * 10**9)
    assert copy_chain(chain, target) == 10
    return chain, target


def test_it_refuses_an_imported_chain_hashed_under_the_new_id_until_told_its_origin(imported):
    _, target = imported
    result = audit_verify(target)
    assert not result.ok
    assert result.first.kind == "altered"


def test_an_imported_chain_verifies_with_its_signatures_and_appends_continue_it(imported):
    source, target = imported
    committed(audit_chain_base_set, tenant_id=target, hash_tenant_id=source)
    result = audit_verify(target)
    assert result.ok, result.problems
    assert (result.events, result.signed_seq, result.checkpoints) == (10, 10, 1)

    with app_connection() as conn:
        assert append(conn, target, "thing.after.import") == 11
    committed(audit_checkpoint_sign, target)
    result = audit_verify(target)
    assert result.ok, result.problems
    assert (result.events, result.last_seq, result.signed_seq) == (11, 11, 11)
    # The source chain is untouched by all this.
    assert audit_verify(source).ok and audit_verify(source).last_seq == 10


def test_an_imported_chains_export_verifies_offline(imported):
    source, target = imported
    committed(audit_chain_base_set, tenant_id=target, hash_tenant_id=source)
    with app_connection() as conn:
        append(conn, target, "thing.after.import")
    committed(audit_checkpoint_sign, target)
    lines = list(export_lines(ExportRange(target, 0, 11), fmt="jsonl"))
    result = export_verify("".join(lines).splitlines())
    assert result.ok, result.problems
    assert (result.events, result.signed_seq) == (11, 11)
    ocsf = "".join(export_lines(ExportRange(target, 0, 11), fmt="ocsf")).splitlines()
    assert export_verify(ocsf).ok


def test_a_lost_head_of_an_imported_chain_is_rebuilt_under_its_origin(imported, superuser):
    source, target = imported
    committed(audit_chain_base_set, tenant_id=target, hash_tenant_id=source)
    with app_connection() as conn:
        append(conn, target, "thing.one")
    superuser.execute("DELETE FROM audit_auditchain WHERE tenant_id = %s", [target])  # as after a crash
    with app_connection() as conn:
        assert append(conn, target, "thing.two") == 12
    assert audit_verify(target).ok


# --- pruning ---------------------------------------------------------------------------------------


def time_of(chain: int, seq: int):
    with rls_scope(chain):
        return AuditEvent.objects.get(tenant_id=chain, seq=seq).occurred_at


@pytest.fixture
def aged(chain, superuser):
    """Chain of 11, signed at #4 and at #11; the tests' boundary is #7's time (#1-#6 are older).
    #1-#10 happened ten days ago (the prune never takes the last day's events), #11 now."""
    chain_age(chain, 10)
    with app_connection() as conn:
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        head = conn.execute("SELECT seq FROM audit_auditchain").fetchone()[0]
    assert head == 10
    # Signed at #4: the head rolled back for the signing, as if #4 were the last event then.
    superuser.execute(
        "UPDATE audit_auditchain c SET seq = 4, hash = e.hash FROM audit_auditevent e"
        " WHERE e.tenant_id = c.tenant_id AND e.seq = 4 AND c.tenant_id = %s",
        [chain],
    )
    committed(audit_checkpoint_sign, chain)
    superuser.execute("DELETE FROM audit_auditchain WHERE tenant_id = %s", [chain])  # rebuilt from the events
    with app_connection() as conn:
        append(conn, chain, "thing.done.11")
    committed(audit_checkpoint_sign, chain)
    return chain


def test_pruning_keeps_the_chain_verifiable_from_the_signed_checkpoint(aged):
    deleted = committed(audit_prune, tenant_id=aged, before=time_of(aged, 7))
    assert deleted == 4  # #1-#4: up to the last signed checkpoint before the boundary; #5, #6 wait
    with rls_scope(aged):
        # #12: the prune itself, recorded in the chain it cut.
        assert list(AuditEvent.objects.filter(tenant_id=aged).values_list("seq", flat=True).order_by("seq")) == list(
            range(5, 13)
        )
        pruned = AuditEvent.objects.get(tenant_id=aged, seq=12)
        assert list(AuditCheckpoint.objects.filter(tenant_id=aged).values_list("seq", flat=True).order_by("seq")) == [
            4,
            11,
        ]
    assert (pruned.action, pruned.actor_type, pruned.actor_id) == ("audit.pruned", "service", "service:audit.prune")
    assert {k: pruned.data[k] for k in ("first_seq", "deleted", "role")} == {
        "first_seq": 5,
        "deleted": 4,
        "role": app_role(),
    }
    result = audit_verify(aged)
    assert result.ok, result.problems
    assert (result.events, result.last_seq, result.signed_seq) == (8, 12, 11)
    with app_connection() as conn:
        assert append(conn, aged, "thing.after.prune") == 13
    assert audit_verify(aged).ok


def test_a_chain_cut_as_the_prune_cuts_it_but_without_its_event_is_reported(aged, superuser):
    """Whoever cuts a chain by hand exactly as the owner's prune does (the rows, the base, the
    older checkpoints), past the append-only triggers, leaves no `audit.pruned` event: the anchor
    checkpoint still vouches for the new start, and verification names the cut all the same."""
    superuser.execute("SET session_replication_role = replica")
    superuser.execute("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq <= 4", [aged])
    superuser.execute(
        "INSERT INTO audit_auditchainbase (tenant_id, hash_tenant_id, first_seq, first_prev_hash, updated_at)"
        " SELECT tenant_id, tenant_id, 5, hash, now() FROM audit_auditcheckpoint WHERE tenant_id = %s AND seq = 4",
        [aged],
    )
    superuser.execute("SET session_replication_role = origin")
    result = audit_verify(aged)
    assert [(p.kind, p.seq) for p in result.problems] == [("prune_unrecorded", 5)]


def test_pruning_twice_deletes_nothing_more_and_nothing_recent_goes(aged):
    committed(audit_prune, tenant_id=aged, before=time_of(aged, 7))
    assert committed(audit_prune, tenant_id=aged, before=time_of(aged, 7)) == 0
    assert committed(audit_prune, tenant_id=aged, before=time_of(aged, 5) - timedelta(days=1)) == 0


def test_a_pruned_chain_without_its_anchor_checkpoint_is_reported(aged, superuser):
    committed(audit_prune, tenant_id=aged, before=time_of(aged, 7))
    superuser.execute("SET session_replication_role = replica")
    superuser.execute("DELETE FROM audit_auditcheckpoint WHERE tenant_id = %s AND seq = 4", [aged])
    superuser.execute("SET session_replication_role = origin")
    result = audit_verify(aged)
    assert not result.ok
    assert result.first.kind == "anchor_unsigned" and result.first.seq == 5


def test_a_chain_pruned_to_its_head_continues_from_the_base(chain):
    chain_age(chain, 2)
    committed(audit_checkpoint_sign, chain)
    # The last event always stays: the anchor is the checkpoint before it, none here (signed at #10).
    assert committed(audit_prune, tenant_id=chain, before=timezone.now()) == 0
    with app_connection() as conn:
        append(conn, chain, "thing.done.11")
    committed(audit_checkpoint_sign, chain)
    assert committed(audit_prune, tenant_id=chain, before=timezone.now()) == 10
    with app_connection() as conn:
        assert append(conn, chain, "thing.done.13") == 13  # #12: the prune's own event
    result = audit_verify(chain)
    assert result.ok, result.problems
    assert (result.events, result.last_seq) == (3, 13)


def test_pruning_one_chain_leaves_another_alone(aged):
    other = random.randint(5 * 10**9, 6 * 10**9)
    with app_connection() as conn:
        for n in range(3):
            append(conn, other, f"other.{n}")
    committed(audit_checkpoint_sign, other)
    committed(audit_prune, tenant_id=aged, before=timezone.now())
    with rls_scope(other):
        assert AuditEvent.objects.filter(tenant_id=other).count() == 3
        assert AuditChain.objects.filter(tenant_id=other).exists()
    assert audit_verify(other).ok


def test_the_prune_never_takes_the_last_days_events_even_from_an_anchor_the_app_role_made(chain):
    """The app role may insert checkpoints, whose signature the database cannot check: asked to
    prune everything after inserting one just below the head, the owner's function still keeps
    every event of the last day (migrations/0010)."""
    from datetime import UTC, datetime

    with app_connection() as conn:
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        ninth = conn.execute("SELECT hash FROM audit_auditevent WHERE seq = 9 AND tenant_id = %s", [chain])
        ninth = ninth.fetchone()[0]
        conn.execute(
            "INSERT INTO audit_auditcheckpoint (tenant_id, seq, hash, signed_at, key_id, signature)"
            " VALUES (%s, 9, %s, now(), 'forged', %s)",
            [chain, ninth, "A" * 86 + "=="],
        )
        pruned = conn.execute(
            "SELECT public.audit_chain_prune(%s, %s)", [chain, datetime.now(UTC) + timedelta(days=1)]
        ).fetchone()[0]
        left = conn.execute("SELECT count(*) FROM audit_auditevent WHERE tenant_id = %s", [chain]).fetchone()[0]
    assert (pruned, left) == (0, 10)
    assert audit_verify(chain).first.kind == "signature_invalid"  # the anchor it made is reported


def test_a_workspace_chain_pruned_before_prunes_were_recorded_gets_its_event_late(fresh_tenant, django_db_blocker):
    """Migration 0011 appends `audit.pruned` (marked `recorded_late`) to every workspace chain whose
    start had moved before prunes recorded themselves, so it verifies intact, not `prune_unrecorded`."""
    import os
    from importlib import import_module

    import psycopg
    from django.db import connection

    catch_up = import_module("apps.audit.migrations.0011_prune_recorded").CATCH_UP
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        signed = audit_checkpoint_sign(tenant.pk)
        with app_connection() as conn:
            append(conn, tenant.pk, "thing.after.checkpoint")
        params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
        with psycopg.connect(**{**params, "dbname": connection.settings_dict["NAME"]}, autocommit=True) as su:
            # As the owner's prune cut chains before migration 0011: rows, base, no event.
            with su.transaction():
                su.execute("SET LOCAL session_replication_role = replica")
                su.execute("DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq <= %s", [tenant.pk, signed.seq])
                su.execute(
                    "INSERT INTO audit_auditchainbase (tenant_id, hash_tenant_id, first_seq, first_prev_hash,"
                    " updated_at) VALUES (%s, %s, %s, %s, now())",
                    [tenant.pk, tenant.pk, signed.seq + 1, signed.hash],
                )
            assert [p.kind for p in audit_verify(tenant.pk).problems] == ["prune_unrecorded"]
            su.execute(catch_up)
            su.execute(catch_up)  # once only, however often it runs
        result = audit_verify(tenant.pk)
        assert result.ok, result.problems
        with rls_scope(tenant.pk):
            late = list(AuditEvent.objects.filter(tenant_id=tenant.pk, action="audit.pruned"))
        assert [e.data for e in late] == [{"first_seq": signed.seq + 1, "recorded_late": True}]


def test_a_prune_and_appends_to_its_chain_at_the_same_time_both_go_through(aged, superuser):
    """The prune locks the chain and then appends `audit.pruned`; an append arriving meanwhile
    waits for it in the same queue. (Had the prune locked the head row outside that queue, the
    append would hold the queue and wait for the row, the prune the reverse: a deadlock.)"""
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    import psycopg
    from django.db import connection, connections

    def prune():
        try:
            return audit_prune(tenant_id=aged, before=time_of(aged, 7))
        finally:
            connections.close_all()

    def add():
        with app_connection() as conn:
            return append(conn, aged, "thing.meanwhile")

    def waiting(what: str) -> bool:
        rows = superuser.execute(  # autocommit: each look a fresh one (a transaction keeps its first)
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s", [f"%{what}%"]
        )
        return rows.fetchone()[0] > 0

    # The prune is held inside its work — after locking the chain, before it deletes — by a
    # superuser's lock on the first event; the append arrives then.
    params = psycopg.conninfo.conninfo_to_dict(os.environ["FOUNDRY_TEST_PG_SUPERUSER"])
    holder = psycopg.connect(**{**params, "dbname": connection.settings_dict["NAME"]})
    holder.execute("SELECT 1 FROM audit_auditevent WHERE tenant_id = %s AND seq = 1 FOR UPDATE", [aged])
    with ThreadPoolExecutor(2) as pool:
        pruning = pool.submit(prune)
        deadline = time.monotonic() + 10
        while not waiting("audit_chain_prune") and time.monotonic() < deadline:
            time.sleep(0.02)
        adding = pool.submit(add)
        while not waiting("audit_append") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert time.monotonic() < deadline, "the prune and the append were not both waiting"
        holder.commit()
        holder.close()
        assert pruning.result(timeout=30) == 4
        assert adding.result(timeout=30) == 13  # after #12, the prune's own event
    result = audit_verify(aged)
    assert result.ok, result.problems


def _sink(chain: int, *, cursor: int, enabled: bool = True) -> None:
    with rls_scope(chain):
        AuditSink.objects.create(
            tenant_id=chain,
            name=f"siem-{cursor}-{enabled}",
            kind=AuditSink.Kind.WEBHOOK,
            url="https://siem.example.com/in",
            enabled=enabled,
            cursor=cursor,
            updated_at=timezone.now(),
        )


def test_an_enabled_sink_holds_the_prune_back_to_what_it_has_not_received(aged):
    """A SIEM sink that has received #1-#2 only (down for longer than the retention period): the
    prune keeps #3 onwards for it — nothing here, as the anchor at #4 is past what it has. A
    disabled sink holds nothing back."""
    committed(_sink, aged, cursor=0, enabled=False)
    committed(_sink, aged, cursor=2)
    assert committed(audit_prune, tenant_id=aged, before=time_of(aged, 7)) == 0
    with rls_scope(aged):
        assert AuditEvent.objects.filter(tenant_id=aged).count() == 11


def test_a_sink_that_has_received_past_the_boundary_holds_nothing_back(aged):
    committed(_sink, aged, cursor=9)
    assert committed(audit_prune, tenant_id=aged, before=time_of(aged, 7)) == 4  # #1-#4, as without a sink
    assert audit_verify(aged).ok
