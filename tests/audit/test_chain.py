"""The chain: appends, hashes (SQL and Python agree), append-only guarantees, Row-Level Security,
tampering by someone with database access, signed checkpoints, erasure, concurrency."""

import json
import multiprocessing
import random
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import schema_context

from apps.audit.chain import GENESIS, event_hash
from apps.audit.models import PLATFORM, AuditActor, AuditCheckpoint, AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.services import audit_actor_erase, audit_checkpoint_sign, audit_record, checkpoint_dict
from apps.audit.signing import public_keys
from apps.audit.verify import audit_verify
from foundry.db.roles import owner_role
from tests.audit.appender import append_many
from tests.audit.conftest import app_connection, append, committed
from tests.conftest import audit_events, tenant_user, test_database_url


def recompute(event: AuditEvent) -> str:
    return event_hash(
        tenant_id=event.tenant_id,
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        outcome=event.outcome,
        ip=event.ip,
        user_agent=event.user_agent,
        request_id=event.request_id,
        details=event.details,
        prev_hash=event.prev_hash,
    )


def test_events_form_a_gap_free_chain_whose_hashes_python_recomputes(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        before = len(audit_events("acme"))
        for n, details in enumerate(
            [{}, {"ünï": "cødé ✓", "n": 1.5}, {"nul": "a\x00b", "nested": {"b": [1, None, True]}}]
        ):
            audit_record(action=f"test.thing.{n}", actor=owner, target=("thing", n), data=details)
    events = audit_events("acme")[before:]
    assert [e.seq for e in events] == list(range(before + 1, before + 4))
    previous = audit_events("acme")[before - 1].hash if before else GENESIS
    for event in events:
        assert event.prev_hash == previous and recompute(event) == event.hash
        previous = event.hash
    assert events[1].data == {"ünï": "cødé ✓", "n": 1.5}
    assert events[2].data["nul"] == "a\x00b"
    assert (events[0].actor_type, events[0].actor_id, events[0].target) == ("user", f"user:{owner.pk}", "thing:0")
    assert audit_verify(acme.pk).ok


@pytest.mark.parametrize(
    "text",
    ["", "plain", "%s %% %1$s %I %L", "ünïcødé ✓ 𝄞 漢字", "a,b:c,1:,", "x" * 5000],
    ids=["empty", "plain", "format-directives", "multibyte", "netstring-marks", "long"],
)
def test_the_sql_hash_is_the_python_hash_byte_for_byte(db, text):
    """audit_event_hash (migrations/0006: one format() call) hashes what chain.event_hash hashes."""
    fields = {  # each its own value: a swap of two fields changes the hash
        "actor_type": "user", "actor_id": f"actor|{text}", "action": f"a.{text}", "target_type": f"type|{text}",
        "target_id": f"id|{text}", "outcome": "success", "ip": "2001:db8::1", "user_agent": f"ua|{text}",
        "request_id": f"rq|{text}", "details": json.dumps({"k": text}), "prev_hash": "ab" * 32,
    }  # fmt: skip
    for tenant_id, seq, at in ((0, 1, "2026-12-01 10:00:00.000000+00"), (7, 10**12, "2026-12-01 10:00:00.120300+00"),
                               (2**62, 999, "1999-12-31 23:59:59.999999+00")):  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT %s::timestamptz, public.audit_event_hash(%s, %s, %s::timestamptz,"
                " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [at, tenant_id, seq, at, *fields.values()],
            )
            moment, digest = cursor.fetchone()
        assert digest == event_hash(tenant_id=tenant_id, seq=seq, occurred_at=moment, **fields)


def test_personal_data_goes_to_the_actor_table_not_the_chain(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        audit_record(action="test.personal", actor=owner)
    (event,) = audit_events("acme", action="test.personal")
    assert "owner@acme.test" not in json.dumps([getattr(event, f.name) for f in AuditEvent._meta.fields], default=str)
    with rls_scope(acme.pk):
        actor = AuditActor.objects.get(tenant_id=acme.pk, actor_id=f"user:{owner.pk}")
    assert actor.email == "owner@acme.test"


def test_erasing_an_actor_keeps_the_chain_verifiable_and_the_events_attributable(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        audit_record(action="test.before_erasure", actor=owner)
    assert audit_actor_erase(tenant_id=acme.pk, actor_id=f"user:{owner.pk}")
    with rls_scope(acme.pk):
        actor = AuditActor.objects.get(tenant_id=acme.pk, actor_id=f"user:{owner.pk}")
    assert (actor.email, actor.display_name) == (None, None) and actor.erased_at
    (event,) = audit_events("acme", action="test.before_erasure")
    assert event.actor_id == f"user:{owner.pk}"
    assert audit_events("acme", action="audit.actor.erased")[-1].target == f"actor:user:{owner.pk}"
    assert audit_verify(acme.pk).ok
    # A later event of the same person does not bring the erased data back.
    with schema_context("acme"):
        audit_record(action="test.after_erasure", actor=owner)
    with rls_scope(acme.pk):
        assert AuditActor.objects.get(tenant_id=acme.pk, actor_id=f"user:{owner.pk}").email is None


# --- Row-Level Security ----------------------------------------------------------------------------


def test_rows_are_visible_only_inside_their_own_chains_scope(acme, globex):
    with schema_context("acme"):
        audit_record(action="test.acme_only")
    with schema_context("globex"):
        audit_record(action="test.globex_only")
    assert not AuditEvent.objects.exists()  # no scope: nothing at all
    with rls_scope(globex.pk):
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert "test.globex_only" in actions and "test.acme_only" not in actions
        assert not AuditEvent.objects.filter(tenant_id=acme.pk).exists()
        # Writing another chain's rows is refused too (WITH CHECK).
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditActor.objects.create(tenant_id=acme.pk, actor_id="user:999", actor_type="user")


def test_a_reused_connection_carries_no_tenant_setting_out_of_its_scope(acme):
    with rls_scope(acme.pk):
        assert AuditEvent.objects.filter(tenant_id=acme.pk).exists() or True
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('foundry.tenant_id', true)")
            assert cursor.fetchone()[0] == str(acme.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('foundry.tenant_id', true), '')")
        assert cursor.fetchone()[0] == ""
    # audit_record inside another tenant's request restores the caller's setting afterwards.
    with rls_scope(acme.pk):
        with schema_context("globex"):
            audit_record(action="test.nested")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('foundry.tenant_id', true)")
            assert cursor.fetchone()[0] == str(acme.pk)


def test_a_separate_pooled_style_connection_sees_nothing_without_a_scope(chain):
    with app_connection() as conn:
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 0
        with conn.transaction():
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(chain)])
            assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 0


def test_the_policy_keeps_using_the_chain_index(chain):
    with app_connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(chain)])
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT * FROM audit_auditevent WHERE seq > 5"))
    assert "Index" in plan and "Seq Scan" not in plan, plan


# --- append-only ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'x'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "UPDATE audit_auditcheckpoint SET hash = 'x'",
        "DELETE FROM audit_auditcheckpoint",
        "TRUNCATE audit_auditcheckpoint",
    ],
)
def test_the_app_role_cannot_change_or_remove_events(signed_chain, statement):
    with app_connection() as conn:
        with pytest.raises(psycopg_errors()), conn.transaction():
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(signed_chain)])
            conn.execute(statement)
        with conn.transaction():
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(signed_chain)])
            assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 10
            assert conn.execute("SELECT count(*) FROM audit_auditcheckpoint").fetchone()[0] == 1


@pytest.fixture
def signed_chain(chain):
    committed(audit_checkpoint_sign, chain)
    return chain


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'x'",
        "TRUNCATE audit_auditevent",
        "DELETE FROM audit_auditevent WHERE seq <= 3",
        "DELETE FROM audit_auditevent WHERE seq = (SELECT max(seq) FROM audit_auditevent)",
        "DELETE FROM audit_auditcheckpoint",
        "DELETE FROM audit_auditchain",
        "DELETE FROM audit_auditchainbase",
    ],
)
def test_even_an_erasing_transaction_of_the_app_roles_own_deletes_nothing(signed_chain, statement):
    """The erasing gate is a setting any session may set: the app role holds no DELETE on the
    trail; retention, import and purge call the owner's functions (audit migrations/0008)."""
    if owner_role() is None:
        pytest.skip("one database role: it owns the trail, only the trigger's gate stands")
    with app_connection() as conn:
        with pytest.raises(psycopg_errors()), conn.transaction():
            conn.execute("SELECT set_config('foundry.erasing', 'on', true)")
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(signed_chain)])
            conn.execute(statement)
        with conn.transaction():
            conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(signed_chain)])
            assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 10


def test_the_app_role_holds_no_update_or_truncate_on_the_trail(db):
    if owner_role() is None:
        pytest.skip("one database role: it owns the trail")
    with connection.cursor() as cursor:
        for table in ("audit_auditevent", "audit_auditcheckpoint"):
            cursor.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants"
                " WHERE table_name = %s AND grantee = current_user ORDER BY 1",
                [table],
            )
            held = {row[0] for row in cursor.fetchall()}
            assert held == {"INSERT", "SELECT"}  # deletes: the owner's functions only


def test_even_a_superuser_is_stopped_by_the_triggers(superuser, chain):
    with pytest.raises(psycopg_errors()):
        superuser.execute("DELETE FROM audit_auditevent WHERE tenant_id = %s", [chain])


def psycopg_errors():
    import psycopg

    return psycopg.errors.InsufficientPrivilege


# --- tampering ---------------------------------------------------------------------------------------


def tamper(superuser, sql: str, params=()) -> None:
    """As an attacker with superuser access: triggers off for this session, RLS bypassed."""
    superuser.execute("SET session_replication_role = replica")
    superuser.execute(sql, params)
    superuser.execute("SET session_replication_role = origin")


def first_break(chain: int, **kwargs):
    result = audit_verify(chain, **kwargs)
    assert not result.ok
    return result.first.seq, result.first.kind


def test_an_edited_field_is_detected_where_it_was_edited(superuser, chain):
    assert audit_verify(chain).ok
    tamper(superuser, "UPDATE audit_auditevent SET details = '{\"n\":99}' WHERE tenant_id = %s AND seq = 4", [chain])
    assert first_break(chain) == (4, "altered")


def test_a_deleted_row_is_detected_where_it_was(superuser, chain):
    tamper(superuser, "DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq = 6", [chain])
    assert first_break(chain) == (6, "missing")


def test_two_swapped_rows_are_detected_at_the_first(superuser, chain):
    tamper(
        superuser,
        """UPDATE audit_auditevent e SET action = o.action, details = o.details
             FROM audit_auditevent o
            WHERE e.tenant_id = %s AND o.tenant_id = e.tenant_id
              AND ((e.seq = 3 AND o.seq = 7) OR (e.seq = 7 AND o.seq = 3))""",
        [chain],
    )
    assert first_break(chain) == (3, "altered")


def _time_text(superuser, chain: int, seq: int) -> str:
    return superuser.execute(
        "SELECT occurred_at::text FROM audit_auditevent WHERE tenant_id = %s AND seq = %s", [chain, seq]
    ).fetchone()[0]


def test_an_event_moved_to_the_same_day_bc_is_detected(superuser, chain):
    """The canonical time (`to_char ... YYYY`) has no era: the same moment BC gives the same bytes.
    An event moved there by a superuser, its hash untouched, verified intact; no append writes a
    time outside the years 1 to 9999, so verification reports it `altered`. Found by a review."""
    assert audit_verify(chain).ok
    before = _time_text(superuser, chain, 4)
    tamper(
        superuser,
        "UPDATE audit_auditevent SET occurred_at ="
        " (to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00 BC')::timestamptz"
        " WHERE tenant_id = %s AND seq = 4",
        [chain],
    )
    after = _time_text(superuser, chain, 4)
    assert after != before and after.endswith("BC")
    result = audit_verify(chain)
    assert not result.ok, f"#4 moved from {before} to {after}; verification: {result.summary()}"
    assert (result.first.seq, result.first.kind) == (4, "altered")


def test_an_event_dated_infinity_is_reported_not_a_crash(superuser, chain):
    """`infinity` has no text: verification (the command, the API, the console badge) crashed on it;
    it reports the event `altered`. Found by a review."""
    tamper(superuser, "UPDATE audit_auditevent SET occurred_at = 'infinity' WHERE tenant_id = %s AND seq = 4", [chain])
    result = audit_verify(chain)
    assert not result.ok
    assert (result.first.seq, result.first.kind) == (4, "altered")


def test_rehashing_without_the_signing_key_is_caught_by_the_signed_checkpoint(superuser, chain):
    assert audit_checkpoint_sign(chain).seq == 10
    # The attacker edits #5 and re-computes every hash after it (the algorithm is public).
    tamper(
        superuser, "UPDATE audit_auditevent SET action = 'nothing.happened' WHERE tenant_id = %s AND seq = 5", [chain]
    )
    rows = superuser.execute(
        "SELECT seq, occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, ip, user_agent,"
        " request_id, details, prev_hash FROM audit_auditevent WHERE tenant_id = %s ORDER BY seq",
        [chain],
    ).fetchall()
    previous = GENESIS
    for seq, at, *rest, _prev in rows:
        fields = dict(zip(["actor_type", "actor_id", "action", "target_type", "target_id", "outcome", "ip",
                           "user_agent", "request_id", "details"], rest, strict=True))  # fmt: skip
        digest = event_hash(tenant_id=chain, seq=seq, occurred_at=at, prev_hash=previous, **fields)
        tamper(
            superuser,
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE tenant_id = %s AND seq = %s",
            [previous, digest, chain, seq],
        )
        previous = digest
    tamper(superuser, "UPDATE audit_auditchain SET hash = %s WHERE tenant_id = %s", [previous, chain])
    assert first_break(chain) == (10, "rewritten")


def test_a_truncated_tail_is_caught_by_the_checkpoint_kept_outside_the_database(superuser, chain, tmp_path, settings):
    settings.FOUNDRY_AUDIT_CHECKPOINT_DIR = str(tmp_path)
    committed(audit_checkpoint_sign, chain)
    exported = [json.loads(line) for line in (tmp_path / f"chain-{chain}.jsonl").read_text().splitlines()]
    assert exported[0]["seq"] == 10
    # The attacker removes the last three events, every trace of them in the database, and
    # winds the head back: the database alone now looks intact.
    tamper(superuser, "DELETE FROM audit_auditevent WHERE tenant_id = %s AND seq > 7", [chain])
    tamper(superuser, "DELETE FROM audit_auditcheckpoint WHERE tenant_id = %s", [chain])
    tamper(
        superuser,
        "UPDATE audit_auditchain SET seq = 7,"
        " hash = (SELECT hash FROM audit_auditevent WHERE tenant_id = %s AND seq = 7) WHERE tenant_id = %s",
        [chain, chain],
    )
    assert audit_verify(chain).ok
    assert first_break(chain, external=exported) == (8, "truncated")


def test_a_forged_checkpoint_is_refused(chain):
    checkpoint = checkpoint_dict(audit_checkpoint_sign(chain))
    forged = {**checkpoint, "hash": "f" * 64}
    assert first_break(chain, external=[forged]) == (10, "signature_invalid")


def test_checkpoints_verify_with_the_public_keys_alone_across_a_key_rotation(chain, settings):
    from tests.audit.conftest import SIGNING_SEED

    old = audit_checkpoint_sign(chain)
    keys = public_keys()
    with app_connection() as conn:
        append(conn, chain, "thing.after_rotation")
    settings.FOUNDRY_AUDIT_SIGNING_KEYS = ["test2:" + "A" * 43, f"test1:{SIGNING_SEED}"]
    new = audit_checkpoint_sign(chain)
    assert (old.key_id, new.key_id, new.seq) == ("test1", "test2", 11)
    result = audit_verify(chain)
    assert result.ok and result.checkpoints == 2 and result.signed_seq == 11
    # A verifier that holds only the old public key proves the chain up to the old checkpoint.
    only_old = audit_verify(chain, keys=keys)
    assert [p.kind for p in only_old.problems] == ["signature_invalid"]


def test_nothing_new_to_sign_signs_nothing(chain):
    assert audit_checkpoint_sign(chain) is not None
    assert audit_checkpoint_sign(chain) is None
    with rls_scope(chain):
        assert AuditCheckpoint.objects.filter(tenant_id=chain).count() == 1


def test_audit_verify_command_names_the_break_and_exits_non_zero(superuser, chain, acme):
    out = StringIO()
    call_command("audit_verify", "--tenant", "acme", stdout=out)
    assert "intact" in out.getvalue()
    tamper(superuser, "UPDATE audit_auditevent SET outcome = 'failure' WHERE tenant_id = %s AND seq = 2", [chain])
    result = audit_verify(chain)
    assert result.summary().startswith(f"Chain {chain}: BROKEN at #2 (altered)")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as info:
        call_command("audit_verify", "--tenant", "nope")
    assert "No tenant" in str(info.value)


# --- concurrency ---------------------------------------------------------------------------------------


def test_four_processes_appending_at_once_leave_a_valid_gap_free_chain(superuser):
    chain = random.randint(3 * 10**9, 4 * 10**9)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert sum(pool.map(append_many, [(test_database_url(), chain, 500)] * 4, chunksize=1)) == 2000
    result = audit_verify(chain)
    assert result.ok and result.events == 2000 and result.last_seq == 2000
    # Each event's time is read once its writer holds the chain: in seq order, time never goes back.
    times = superuser.execute(
        "SELECT occurred_at FROM audit_auditevent WHERE tenant_id = %s ORDER BY seq", [chain]
    ).fetchall()
    assert len(times) == 2000 and times == sorted(times)


def test_the_platform_chain_records_operator_actions(db):
    before = len(audit_events("public"))
    with schema_context("public"):
        audit_record(action="test.platform", actor="ops")
    assert [e.action for e in audit_events("public")[before:]] == ["test.platform"]
    assert audit_verify(PLATFORM).ok


def test_a_lost_head_is_rebuilt_from_the_last_event(superuser, chain):
    """The heads table is unlogged: a crash empties it. The chain goes on where its events end."""
    tamper(superuser, "DELETE FROM audit_auditchain WHERE tenant_id = %s", [chain])
    with app_connection() as conn:
        assert append(conn, chain, "thing.after_crash") == 11
    result = audit_verify(chain)
    assert result.ok and result.last_seq == 11


def test_the_erase_command_serves_a_data_subject_request(acme):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        audit_record(action="test.command_erasure", actor=owner)
    out = StringIO()
    call_command("audit_erase_actor", "--tenant", "acme", f"user:{owner.pk}", stdout=out)
    assert "Erased" in out.getvalue()
    call_command("audit_erase_actor", "--tenant", "acme", f"user:{owner.pk}", stdout=out)
    assert "Nothing to erase" in out.getvalue()
    with rls_scope(acme.pk):
        assert AuditActor.objects.get(tenant_id=acme.pk, actor_id=f"user:{owner.pk}").email is None
    assert audit_verify(acme.pk).ok
