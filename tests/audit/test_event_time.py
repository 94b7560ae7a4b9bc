"""An event's `occurred_at` is "when it was appended (database clock)" (docs/audit.md): the head
row, which the app role may write (every append moves it), has no say in it (migration 0014), and
an event dated before the one it follows is reported (`time_reversed`), online and offline."""

from datetime import UTC, datetime, timedelta

from apps.audit.export import ExportRange, export_lines, export_verify
from apps.audit.models import AuditEvent
from apps.audit.scope import rls_scope
from apps.audit.verify import audit_verify
from tests.audit.conftest import app_connection, append


def test_the_app_role_cannot_set_the_time_of_later_genuine_events(chain):
    with app_connection() as conn:
        conn.execute("SELECT set_config('foundry.tenant_id', %s, false)", [str(chain)])
        # What SQL injected into the application can do: the head row is the app role's to write.
        conn.execute(
            "UPDATE public.audit_auditchain SET updated_at = '2099-01-01T00:00:00Z' WHERE tenant_id = %s", [chain]
        )
    before = datetime.now(UTC)
    with app_connection() as conn:  # later, a genuine event appended the platform's way
        seq = append(conn, chain, "auth.login")
    after = datetime.now(UTC)
    with rls_scope(chain):
        at = AuditEvent.objects.get(tenant_id=chain, seq=seq).occurred_at
    result = audit_verify(chain)
    assert (before - timedelta(seconds=5) <= at <= after + timedelta(seconds=5)) or not result.ok, (
        f"a genuine event appended at {before:%Y-%m-%d %H:%M} is stamped {at} and the chain verifies"
        f" intact ({result.summary()})"
    )


def test_an_event_dated_before_the_one_it_follows_is_reported(chain):
    """docs/audit.md: "time never goes back along a chain". The app role may INSERT events and
    UPDATE the head (audit_append runs as its caller): an event written by hand after the head,
    hashed correctly, dated a year back, and the head moved onto it, is named `time_reversed`."""
    with app_connection() as conn, conn.transaction():
        conn.execute("SELECT set_config('foundry.tenant_id', %s, true)", [str(chain)])
        seq, head_hash = conn.execute(
            "SELECT seq, hash FROM public.audit_auditchain WHERE tenant_id = %s", [chain]
        ).fetchone()
        at = "2025-12-01T09:00:00Z"
        digest = conn.execute(
            "SELECT public.audit_event_hash(%s, %s, %s::timestamptz, 'user', 'user:1', 'member.role_changed', '', '',"
            " 'success', '', '', '', '{}', %s)",
            [chain, seq + 1, at, head_hash],
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO public.audit_auditevent (tenant_id, seq, occurred_at, actor_type, actor_id, action,"
            " target_type, target_id, outcome, ip, user_agent, request_id, details, prev_hash, hash)"
            " VALUES (%s, %s, %s, 'user', 'user:1', 'member.role_changed', '', '', 'success', '', '', '', '{}',"
            " %s, %s)",
            [chain, seq + 1, at, head_hash, digest],
        )
        conn.execute(
            "UPDATE public.audit_auditchain SET seq = %s, hash = %s WHERE tenant_id = %s", [seq + 1, digest, chain]
        )
    with rls_scope(chain):
        times = list(AuditEvent.objects.filter(tenant_id=chain).order_by("seq").values_list("occurred_at", flat=True))
    assert times[-1] < times[-2]  # #11 dated a year before #10
    result = audit_verify(chain)
    assert [(p.kind, p.seq) for p in result.problems] == [("time_reversed", 11)], result.summary()
    exported = "".join(export_lines(ExportRange(chain, 0, 11), fmt="jsonl")).splitlines()  # offline, the same
    assert [(p.kind, p.seq) for p in export_verify(exported).problems] == [("time_reversed", 11)]
