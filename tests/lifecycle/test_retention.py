"""Retention: each kind's boundary (one second inside the window stays, one second outside goes),
dry runs that delete nothing and count the same, runs still going untouched, the audit event of
every pass, one tenant's pass never touching another's rows, the policy's API and console page
with their refusals, the command, and the nightly beat job through a real worker."""

import html
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.services import audit_checkpoint_sign, audit_record
from apps.audit.verify import audit_verify
from apps.billing.models import UsageDay, UsageRecord
from apps.billing.rls import usage_scope
from apps.billing.rollups import usage_rollup
from apps.lifecycle.models import Export, RetentionPolicy
from apps.lifecycle.retention import KINDS, retention_apply, retention_policy_set, retention_tenants
from apps.lifecycle.tasks import apply_retention
from apps.runs.checkpoints import checkpoint_connection, checkpointer
from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_create
from foundry.runtime.graph import AgentState, agent_graph_compiled
from tests.api.conftest import api, issue
from tests.audit.conftest import chain_age
from tests.conftest import audit_events, client_for, usage_rows
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy

SECOND = timedelta(seconds=1)


@pytest.fixture
def agents(acme, globex) -> dict:
    """invoice-triage deployed in acme and in globex."""
    return {acme.slug: deploy(acme, FINANCE, TRIAGE), globex.slug: deploy(globex, FINANCE, TRIAGE)}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def policy_set(tenant, **values) -> None:
    """Every kind kept for ever, but `values`."""
    everything = dict.fromkeys(
        ("runs_days", "checkpoints_days", "usage_detail_days", "traces_days", "exports_days", "audit_days")
    )
    with schema_context(tenant.schema_name):
        retention_policy_set(actor="test", **{**everything, "audit_legal_hold": False, **values})


def make_run(tenant, agent, *, finished_at=None, status="succeeded", parent=None, step=None, trace_id="", steps=0):
    """A run row as a worker leaves it (no checkpoints), with `steps` steps and an approval."""
    with schema_context(tenant.schema_name):
        run = run_create(agent=agent, input="Old work.", created_by="test", parent=parent, parent_step=step)
        Run.objects.filter(pk=run.pk).update(status=status, finished_at=finished_at, trace_id=trace_id)
        for index in range(1, steps + 1):
            Step.objects.create(run=run, index=index, node="tool", status="ok", record={}, replay={})
        if steps:
            Approval.objects.create(run=run, step=1, tool="find_invoices", tool_call_id="c1", decision="approved")
        return run


def real_run(tenant, agent, *, finished_at) -> Run:
    """A run advanced here through the engine (steps, usage, LangGraph checkpoints), then aged."""
    with schema_context(tenant.schema_name):
        run = run_create(agent=agent, input="Triage invoice INV-1001.", created_by="test")
    run = advance(run, tenant.schema_name)
    assert run.status == "succeeded", run.message
    with schema_context(tenant.schema_name):
        Run.objects.filter(pk=run.pk).update(finished_at=finished_at)
    return run


def run_ids(tenant) -> set:
    with schema_context(tenant.schema_name):
        return {str(pk) for pk in Run.objects.values_list("pk", flat=True)}


def checkpoint_rows(tenant, run) -> dict:
    with checkpoint_connection().cursor() as cursor:
        counts = {}
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            cursor.execute(
                f'SELECT count(*) AS n FROM "{tenant.schema_name}".{table} WHERE thread_id = %s', [str(run.pk)]
            )
            counts[table] = cursor.fetchone()["n"]
        return counts


def final_state(tenant, run) -> dict:
    graph = agent_graph_compiled(AgentState).copy(update={"checkpointer": checkpointer(tenant.schema_name)})
    return graph.get_state({"configurable": {"thread_id": str(run.pk)}}).values


def ledger_add(tenant, when, *, agent="alpha") -> UsageRecord:
    with usage_scope(tenant.pk):
        return UsageRecord.objects.create(
            tenant_id=tenant.pk, project="p", agent=agent, provider="scripted", model="m", input_tokens=10,
            output_tokens=5, latency_ms=1.0, cost_usd=Decimal("0.01"), created_at=when,
        )  # fmt: skip


def export_add(tenant, created_at, name: str) -> Export:
    with schema_context(tenant.schema_name):
        saved = default_storage.save(f"exports/{tenant.schema_name}/{name}.zip", ContentFile(b"archive"))
        export = Export.objects.create(status="succeeded", file=saved, created_by="test")
        Export.objects.filter(pk=export.pk).update(created_at=created_at)
        export.refresh_from_db()
        return export


# --- each kind's boundary -----------------------------------------------------------------------


def test_finished_runs_go_with_steps_approvals_children_and_checkpoints_one_second_past_the_boundary(acme, agents):
    now = timezone.now()
    agent = agents["acme"]
    policy_set(acme, runs_days=30)
    outside = real_run(acme, agent, finished_at=now - timedelta(days=30) - SECOND)
    inside = real_run(acme, agent, finished_at=now - timedelta(days=30) + SECOND)
    parent = make_run(acme, agent, finished_at=now - timedelta(days=90), steps=2)
    child = make_run(acme, agent, finished_at=now - timedelta(days=90), parent=parent, step=1, steps=1)
    # Runs still going are never touched, however old; nor is a finished tree with one still going.
    running = make_run(acme, agent, status="running", steps=1)
    waiting_parent = make_run(acme, agent, finished_at=now - timedelta(days=90))
    waiting_child = make_run(acme, agent, status="waiting_approval", parent=waiting_parent, step=1)
    assert checkpoint_rows(acme, outside)["checkpoints"] > 1

    counts = retention_apply(tenant=acme, now=now, batch_size=2)

    assert counts["runs"] == 3  # outside, parent, child
    kept = {str(r.pk) for r in (inside, running, waiting_parent, waiting_child)}
    assert run_ids(acme) == kept
    with schema_context("acme"):
        assert not Step.objects.filter(run_id__in=[outside.pk, parent.pk, child.pk]).exists()
        assert not Approval.objects.filter(run_id__in=[parent.pk, child.pk]).exists()
        assert Step.objects.filter(run=inside).count() == 3
    assert checkpoint_rows(acme, outside) == {"checkpoints": 0, "checkpoint_writes": 0, "checkpoint_blobs": 0}
    assert checkpoint_rows(acme, inside)["checkpoints"] > 1
    assert usage_rows(acme, run_id=outside.pk)  # the ledger outlives the runs it counts


def test_a_finished_runs_checkpoints_are_cut_to_its_final_state_which_still_reads_the_same(acme, agents):
    now = timezone.now()
    policy_set(acme, checkpoints_days=30)
    outside = real_run(acme, agents["acme"], finished_at=now - timedelta(days=30) - SECOND)
    inside = real_run(acme, agents["acme"], finished_at=now - timedelta(days=30) + SECOND)
    state = final_state(acme, outside)
    before_inside = checkpoint_rows(acme, inside)
    history = checkpoint_rows(acme, outside)["checkpoints"]
    assert len(state["messages"]) == 4 and len(state["steps"]) == 3  # rebuilt from delta channels

    counts = retention_apply(tenant=acme, now=now, batch_size=3)

    assert counts["checkpoints"] == history - 1
    rows = checkpoint_rows(acme, outside)
    assert (rows["checkpoints"], rows["checkpoint_writes"]) == (1, 0)
    assert final_state(acme, outside) == state
    assert final_state(acme, outside)["outcome"]["output"] == outside.output
    assert checkpoint_rows(acme, inside) == before_inside
    # The run itself, and the API's view of it, are untouched.
    response = api(acme, issue(acme)).get(f"/api/v1/runs/{outside.pk}")
    assert response.status_code == 200 and response.json()["output"] == outside.output
    # A second pass finds nothing more to cut.
    assert retention_apply(tenant=acme, now=now)["checkpoints"] == 0
    assert final_state(acme, outside) == state


def test_usage_detail_goes_once_rolled_up_and_the_daily_totals_stay(acme, globex):
    now = timezone.now()
    policy_set(acme, usage_detail_days=30)
    policy_set(globex, usage_detail_days=30)
    boundary = now - timedelta(days=30)
    boundary_day = datetime.combine(boundary.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    outside = ledger_add(acme, boundary_day - SECOND)  # the day before the cut-off's: goes
    inside = ledger_add(acme, boundary_day)  # before the cut-off, on its day: whole days only, stays
    unrolled = ledger_add(acme, boundary - timedelta(days=3))  # its day was never rolled up
    theirs = ledger_add(globex, boundary - timedelta(days=1))
    days = {r.created_at.astimezone(UTC).date() for r in (outside, inside)}
    for day in days:
        usage_rollup(tenant_id=acme.pk, day=day)
    usage_rollup(tenant_id=globex.pk, day=theirs.created_at.astimezone(UTC).date())
    with usage_scope(acme.pk):
        totals = list(UsageDay.objects.filter(tenant_id=acme.pk).values_list("day", "calls", "input_tokens"))

    assert retention_apply(tenant=acme, now=now)["usage_detail"] == 1

    assert {r.pk for r in usage_rows(acme)} == {inside.pk, unrolled.pk}
    assert [r.pk for r in usage_rows(globex)] == [theirs.pk]
    with usage_scope(acme.pk):
        assert list(UsageDay.objects.filter(tenant_id=acme.pk).values_list("day", "calls", "input_tokens")) == totals


def test_usage_of_days_the_roll_up_still_recomputes_stays_whatever_the_policy(acme):
    now = timezone.now()
    policy_set(acme, usage_detail_days=1)
    yesterday = ledger_add(acme, now - timedelta(days=1, hours=1) if now.hour >= 1 else now - timedelta(hours=1))
    usage_rollup(tenant_id=acme.pk, day=yesterday.created_at.astimezone(UTC).date())
    assert retention_apply(tenant=acme, now=now)["usage_detail"] == 0
    assert [r.pk for r in usage_rows(acme)] == [yesterday.pk]


def test_trace_references_are_cleared_one_second_past_the_boundary(acme, agents):
    now = timezone.now()
    policy_set(acme, traces_days=30)
    trace = "0af7651916cd43dd8448eb211c80319c"
    outside = make_run(acme, agents["acme"], finished_at=now - timedelta(days=30) - SECOND, trace_id=trace)
    inside = make_run(acme, agents["acme"], finished_at=now - timedelta(days=30) + SECOND, trace_id=trace)
    running = make_run(acme, agents["acme"], status="running", trace_id=trace)

    assert retention_apply(tenant=acme, now=now)["traces"] == 1

    with schema_context("acme"):
        traces = dict(Run.objects.values_list("pk", "trace_id"))
    assert traces == {outside.pk: "", inside.pk: trace, running.pk: trace}


def test_exports_go_with_their_files_one_second_past_the_boundary(acme, media):
    now = timezone.now()
    policy_set(acme, exports_days=7)
    outside = export_add(acme, now - timedelta(days=7) - SECOND, "old")
    inside = export_add(acme, now - timedelta(days=7) + SECOND, "new")

    assert retention_apply(tenant=acme, now=now)["exports"] == 1

    with schema_context("acme"):
        assert list(Export.objects.values_list("pk", flat=True)) == [inside.pk]
    assert not default_storage.exists(outside.file) and default_storage.exists(inside.file)


def test_the_audit_trail_is_pruned_up_to_a_signed_checkpoint_unless_on_legal_hold(fresh_tenant, django_db_blocker):
    """Committed, with its events moved three days back (the prune never takes the last day's)."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        policy_set(tenant, audit_days=1, audit_legal_hold=True)
        chain_age(tenant.pk, 3)
        first = audit_checkpoint_sign(tenant.pk)  # at the last of the aged events
        events = len(audit_events(tenant.schema_name))
        assert retention_apply(tenant=tenant)["audit"] == 0
        assert len(audit_events(tenant.schema_name)) == events + 1  # the pass's own event

        policy_set(tenant, audit_days=1, audit_legal_hold=False)
        audit_checkpoint_sign(tenant.pk)
        with schema_context(tenant.schema_name):
            audit_record(action="test.after_checkpoint", actor="test")  # the chain's last event always stays
        preview = retention_apply(tenant=tenant, dry_run=True)["audit"]
        assert preview == first.seq  # every aged event: up to the checkpoint signed after them
        assert retention_apply(tenant=tenant)["audit"] == preview
        assert min(e.seq for e in audit_events(tenant.schema_name)) == first.seq + 1
        assert audit_verify(tenant.pk).problems == []


def test_a_prune_the_app_role_calls_itself_is_recorded_in_the_chain_it_cut(fresh_tenant, django_db_blocker):
    """SQL injected into the application may call the owner's `audit_chain_prune` directly, not
    through a retention pass, whatever the policy says: what it prunes is recorded as
    `audit.pruned` in the chain it cut — with no `retention.applied` beside it — and the chain
    verifies intact from its new start."""
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        policy_set(tenant, audit_legal_hold=True)
        chain_age(tenant.pk, 3)
        first = audit_checkpoint_sign(tenant.pk)
        with schema_context(tenant.schema_name):
            audit_record(action="test.after_checkpoint", actor="test")
        with connection.cursor() as cursor:
            cursor.execute("SELECT public.audit_chain_prune(%s, now() + interval '1 day')", [tenant.pk])
            assert cursor.fetchone()[0] == first.seq
        events = audit_events(tenant.schema_name)
        [pruned] = [e for e in events if e.action == "audit.pruned"]
        assert pruned.seq == events[-1].seq and min(e.seq for e in events) == first.seq + 1
        assert (pruned.actor_id, pruned.data["first_seq"], pruned.data["deleted"]) == (
            "service:audit.prune",
            first.seq + 1,
            first.seq,
        )
        assert not [e for e in events if e.action == "retention.applied"]
        assert audit_verify(tenant.pk).problems == []


# --- dry runs, the pass's audit event, isolation ----------------------------------------------------


def test_a_dry_run_deletes_nothing_and_counts_what_the_real_pass_then_deletes(acme, agents, media):
    now = timezone.now()
    policy_set(acme, runs_days=60, checkpoints_days=10, traces_days=10, usage_detail_days=10, exports_days=1)
    agent, old = agents["acme"], now - timedelta(days=90)
    trace = "0af7651916cd43dd8448eb211c80319c"
    doomed = real_run(acme, agent, finished_at=old)  # goes whole: not counted as pruned as well
    pruned = real_run(acme, agent, finished_at=now - timedelta(days=20))
    make_run(acme, agent, finished_at=old, trace_id=trace, steps=2)
    make_run(acme, agent, finished_at=now - timedelta(days=20), trace_id=trace)
    ledger_add(acme, old)
    usage_rollup(tenant_id=acme.pk, day=old.astimezone(UTC).date())
    export_add(acme, now - timedelta(days=2), "old")
    before = (run_ids(acme), checkpoint_rows(acme, doomed), checkpoint_rows(acme, pruned), len(usage_rows(acme)))

    preview = retention_apply(tenant=acme, now=now, dry_run=True)

    assert (run_ids(acme), checkpoint_rows(acme, doomed), checkpoint_rows(acme, pruned), len(usage_rows(acme))) == (
        before
    )
    with schema_context("acme"):
        assert Export.objects.count() == 1
    assert preview["runs"] == 2 and preview["traces"] == 1 and preview["exports"] == 1
    assert preview["usage_detail"] == 1 and preview["checkpoints"] == before[2]["checkpoints"] - 1
    assert retention_apply(tenant=acme, now=now) == preview


def test_every_pass_records_one_audit_event_with_its_counts_and_policy(acme, media):
    now = timezone.now()
    policy_set(acme, exports_days=7)
    export_add(acme, now - timedelta(days=8), "old")
    retention_apply(tenant=acme, now=now, dry_run=True)
    counts = retention_apply(tenant=acme, now=now)
    events = audit_events(acme.schema_name, action="retention.applied")
    assert [e.data["dry_run"] for e in events] == [True, False]
    assert events[1].data["counts"] == counts == {**dict.fromkeys(KINDS, 0), "exports": 1}
    assert events[1].data["policy"]["exports_days"] == 7 and events[1].data["policy"]["runs_days"] is None
    assert events[1].actor_id == "service:retention"


def test_applying_one_tenants_policy_never_touches_anothers_rows(acme, globex, agents, media):
    now = timezone.now()
    old = now - timedelta(days=400)
    trace = "0af7651916cd43dd8448eb211c80319c"
    for tenant in (acme, globex):
        policy_set(tenant, runs_days=30, checkpoints_days=1, usage_detail_days=30, traces_days=1, exports_days=1)
    theirs = {
        "run": real_run(globex, agents["globex"], finished_at=old),
        "traced": make_run(globex, agents["globex"], finished_at=now - timedelta(days=2), trace_id=trace),
        "usage": ledger_add(globex, old),
        "export": export_add(globex, old, "theirs"),
    }
    usage_rollup(tenant_id=globex.pk, day=old.astimezone(UTC).date())
    ours = real_run(acme, agents["acme"], finished_at=old)
    globex_runs, globex_checkpoints = run_ids(globex), checkpoint_rows(globex, theirs["run"])

    counts = retention_apply(tenant=acme, now=now)

    assert counts["runs"] == 1 and run_ids(acme) == set()
    assert checkpoint_rows(acme, ours)["checkpoints"] == 0
    assert run_ids(globex) == globex_runs
    assert checkpoint_rows(globex, theirs["run"]) == globex_checkpoints
    with schema_context("globex"):
        assert Run.objects.get(pk=theirs["traced"].pk).trace_id == trace
        assert Export.objects.filter(pk=theirs["export"].pk).exists()
    assert default_storage.exists(theirs["export"].file)
    assert [r.pk for r in usage_rows(globex) if r.run_id is None] == [theirs["usage"].pk]
    assert not audit_events(globex.schema_name, action="retention.applied")


# --- the policy's service, API and console page --------------------------------------------------


def put(client, body):
    return client.put("/api/v1/retention", body, content_type="application/json")


_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w[\w-]*)(?:="([^"]*)")?')


def page_fields(client) -> dict[str, str]:
    """What a browser submits from the retention page as rendered, changed by nobody (the
    values the page was rendered with included, in their hidden `initial-` inputs)."""
    page = client.get("/settings/retention/").content.decode()
    form = page.split('data-testid="retention-form"', 1)[1].split("</form>", 1)[0]
    fields = {}
    for tag in _INPUT.findall(form):
        attrs = {k.lower(): html.unescape(v or "") for k, v in _ATTR.findall(tag[6:-1])}
        name, kind = attrs.get("name"), attrs.get("type", "text").lower()
        if name and name != "csrfmiddlewaretoken" and (kind != "checkbox" or "checked" in attrs):
            fields[name] = attrs.get("value", "on" if kind == "checkbox" else "")
    return fields


def test_an_admin_reads_and_changes_the_policy_and_the_change_is_audited(acme):
    client = api(acme, issue(acme))
    assert client.get("/api/v1/retention").json()["checkpoints_days"] == 30
    response = put(client, {"runs_days": 365, "audit_legal_hold": True, "traces_days": None})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["runs_days"], body["audit_legal_hold"], body["traces_days"], body["checkpoints_days"]) == (
        365,
        True,
        None,
        30,
    )
    assert body["updated_by"]
    [event] = audit_events(acme.schema_name, action="retention.updated")
    assert event.data["changes"] == {
        "runs_days": [None, 365],
        "audit_legal_hold": [False, True],
        "traces_days": [30, None],
    }
    assert put(client, {"runs_days": 365}).status_code == 200  # no change: no event
    assert len(audit_events(acme.schema_name, action="retention.updated")) == 1
    assert api(acme, issue(acme, role="viewer", scopes=["read"])).get("/api/v1/retention").json()["runs_days"] == 365


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"runs_days": -1}, "days_invalid"),
        ({"runs_days": 0}, "days_invalid"),
        ({"runs_days": 36501}, "days_too_large"),
        ({"runs_days": 10**20}, "days_too_large"),
        ({"runs_days": "30"}, "days_invalid"),
        ({"runs_days": 30.5}, "days_invalid"),
        ({"runs_days": True}, "days_invalid"),
        ({"audit_legal_hold": "yes"}, "legal_hold_invalid"),
        ({"keep_everything": 1}, "field_unknown"),
        ({"actor": "someone"}, "field_unknown"),
        ({"exports_days": 3, "audit_days": -5}, "days_invalid"),
        ([{"runs_days": 3}], "body_invalid"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code_and_changes_nothing(acme, body, code):
    client = api(acme, issue(acme))
    before = client.get("/api/v1/retention").json()
    response = put(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert client.get("/api/v1/retention").json() == before
    assert not audit_events(acme.schema_name, action="retention.updated")


@pytest.mark.parametrize("email", ["viewer@acme.test", "developer@acme.test", "operator@acme.test"])
def test_members_who_do_not_manage_settings_cannot_change_or_preview_the_policy(acme, email):
    client = client_for(acme, email)
    assert client.get("/api/v1/retention").status_code == 200
    assert put(client, {"runs_days": 1}).status_code == 403
    assert client.post("/api/v1/retention/preview").status_code == 403
    assert client.post("/settings/retention/", {"runs_days": "1"}).status_code == 403
    with schema_context("acme"):
        assert RetentionPolicy.objects.get().runs_days is None
    assert not audit_events(acme.schema_name, action="retention.applied")


def test_admins_put_a_legal_hold_on_and_only_owners_lift_it(acme):
    """A legal hold keeps evidence: an admin who could lift it could then shorten `audit_days` and
    let the next pass prune the trail. Lifting it is the owners' (403, nothing changed)."""
    admin = api(acme, issue(acme))
    assert put(admin, {"audit_legal_hold": True}).status_code == 200
    refused = put(admin, {"audit_legal_hold": False, "audit_days": 1})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied"), refused.content
    console = client_for(acme, "admin@acme.test")
    fields = page_fields(console)
    del fields["audit_legal_hold"]  # the box unticked
    page = console.post("/settings/retention/", fields)
    assert page.status_code == 403 and b"Only owners lift a legal hold" in page.content
    with schema_context("acme"):
        assert (RetentionPolicy.objects.get().audit_legal_hold, RetentionPolicy.objects.get().audit_days) == (
            True,
            None,
        )
    assert len(audit_events(acme.schema_name, action="retention.updated")) == 1
    assert put(api(acme, issue(acme, role="owner")), {"audit_legal_hold": False}).status_code == 200
    with schema_context("acme"):
        assert RetentionPolicy.objects.get().audit_legal_hold is False


def test_a_viewer_token_cannot_change_the_policy(acme):
    assert put(api(acme, issue(acme, role="viewer", scopes=["read", "admin"])), {"runs_days": 1}).status_code == 403
    with schema_context("acme"):
        assert RetentionPolicy.objects.get().runs_days is None


def test_one_workspaces_api_neither_reads_nor_changes_anothers_policy(acme, globex):
    policy_set(globex, runs_days=77)
    acme_client = api(acme, issue(acme))
    assert acme_client.get("/api/v1/retention").json()["runs_days"] is None
    assert put(acme_client, {"runs_days": 5}).json()["runs_days"] == 5
    with schema_context("globex"):
        assert RetentionPolicy.objects.get().runs_days == 77
    # acme's token means nothing on globex's host.
    assert put(api(globex, issue(acme)), {"runs_days": 1}).status_code == 401
    with schema_context("globex"):
        assert RetentionPolicy.objects.get().runs_days == 77


def test_the_preview_api_counts_and_deletes_nothing(acme, media):
    policy_set(acme, exports_days=1)
    export_add(acme, timezone.now() - timedelta(days=2), "old")
    response = api(acme, issue(acme)).post("/api/v1/retention/preview", content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["counts"] == {**dict.fromkeys(KINDS, 0), "exports": 1}
    assert response.json()["policy"]["exports_days"] == 1
    with schema_context("acme"):
        assert Export.objects.count() == 1
    [event] = audit_events(acme.schema_name, action="retention.applied")
    assert event.data["dry_run"] is True


def test_the_console_page_saves_the_policy_and_shows_a_preview(acme, media):
    client = client_for(acme, "admin@acme.test")
    page = client.get("/settings/retention/")
    assert page.status_code == 200 and b'data-testid="retention-form"' in page.content
    response = client.post(
        "/settings/retention/", {**page_fields(client), "exports_days": "1", "usage_detail_days": ""}
    )
    assert response.status_code == 302
    with schema_context("acme"):
        policy = RetentionPolicy.objects.get()
    assert (policy.exports_days, policy.usage_detail_days, policy.audit_legal_hold) == (1, None, False)
    export_add(acme, timezone.now() - timedelta(days=2), "old")
    preview = client.post("/settings/retention/preview/", HTTP_HX_REQUEST="true")
    assert preview.status_code == 200
    assert b'data-testid="retention-preview"' in preview.content and b'Export archives</td><td class="num">1' in (
        preview.content
    )
    with schema_context("acme"):
        assert Export.objects.count() == 1


def test_saving_the_page_changes_only_what_its_user_changed(acme, owner_client):
    """A legal hold put on (by another admin, or counsel's automation) after the page was opened
    with it off stays on when the page is saved with only runs_days changed: the save carries
    what its user changed, not the whole form as it was rendered."""
    fields = page_fields(owner_client)
    assert "audit_legal_hold" not in fields  # rendered unticked
    with schema_context(acme.schema_name):
        retention_policy_set(actor="admin:counsel", audit_legal_hold=True)
    assert owner_client.post("/settings/retention/", {**fields, "runs_days": "90"}).status_code == 302
    with schema_context(acme.schema_name):
        policy = RetentionPolicy.objects.get(pk=1)
    assert (policy.audit_legal_hold, policy.runs_days) == (True, 90)


@pytest.mark.parametrize(
    ("field", "value", "code"), [("runs_days", "-3", "days_invalid"), ("audit_days", "99999", "days_too_large")]
)
def test_the_console_refuses_bad_values_and_changes_nothing(acme, field, value, code):
    response = client_for(acme, "owner@acme.test").post("/settings/retention/", {field: value})
    assert response.status_code == 400
    assert field.split("_")[0].encode() in response.content
    with schema_context("acme"):
        policy = RetentionPolicy.objects.get()
    assert (policy.runs_days, policy.audit_days, policy.checkpoints_days) == (None, None, 30)
    assert not audit_events(acme.schema_name, action="retention.updated")


# --- the command and the beat job -------------------------------------------------------------------


def test_the_command_prints_what_a_dry_run_would_delete_and_deletes_nothing(acme, media, capsys):
    policy_set(acme, exports_days=1)
    export_add(acme, timezone.now() - timedelta(days=2), "old")
    call_command("apply_retention", "--tenant", "acme", "--dry-run")
    assert "acme: would delete runs 0, checkpoints 0, usage_detail 0, traces 0, exports 1, audit 0" in (
        capsys.readouterr().out
    )
    with schema_context("acme"):
        assert Export.objects.count() == 1
    call_command("apply_retention", "--tenant", "acme")
    assert "acme: deleted runs 0, checkpoints 0, usage_detail 0, traces 0, exports 1" in capsys.readouterr().out
    with schema_context("acme"):
        assert Export.objects.count() == 0


def test_the_command_goes_on_past_a_workspace_whose_pass_fails_and_exits_non_zero(acme, globex, media, capsys):
    """Storage that fails in one workspace's pass (here: its exports' folder is a file) stops no
    other's, as the nightly tasks do; the command names it and fails, without a traceback."""
    for tenant in (acme, globex):
        policy_set(tenant, exports_days=1)
        export_add(tenant, timezone.now() - timedelta(days=2), "old")
    for stored in (media / "exports" / acme.schema_name).iterdir():
        stored.unlink()
    (media / "exports" / acme.schema_name).rmdir()
    (media / "exports" / acme.schema_name).write_bytes(b"not a folder")

    with pytest.raises(CommandError, match=r"Failed \(see the log\): acme\."):
        call_command("apply_retention")
    captured = capsys.readouterr()
    assert "globex: deleted runs 0, checkpoints 0, usage_detail 0, traces 0, exports 1" in captured.out
    assert "acme: failed (NotADirectoryError; logged)" in captured.err
    with schema_context("globex"):
        assert Export.objects.count() == 0


def test_the_command_refuses_an_unknown_workspace(acme):
    with pytest.raises(CommandError, match="no workspace 'nope'"):
        call_command("apply_retention", "--tenant", "nope")
    assert not audit_events(acme.schema_name, action="retention.applied")


def test_the_nightly_pass_visits_active_workspaces_only(acme, globex):
    globex.status = globex.Status.SUSPENDED
    globex.save(update_fields=["status"])
    slugs = set(retention_tenants().values_list("slug", flat=True))
    assert "acme" in slugs and "globex" not in slugs
    entry = settings.CELERY_BEAT_SCHEDULE["lifecycle-retention"]
    assert entry["task"] == "lifecycle.apply_retention"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {15})


def test_the_beat_task_has_a_real_worker_apply_a_workspaces_policy(
    celery_worker_process, fresh_tenant, django_db_blocker, tmp_path
):
    with django_db_blocker.unblock():  # committed: the worker must see it
        policy_set(fresh_tenant, exports_days=7)
        old = export_add(fresh_tenant, timezone.now() - timedelta(days=8), "old")
        new = export_add(fresh_tenant, timezone.now() - timedelta(days=6), "new")
        try:
            # The beat task, sent to the worker, queues the workspace's pass, which the worker runs.
            apply_retention.delay([fresh_tenant.schema_name])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not audit_events(
                fresh_tenant.schema_name, action="retention.applied"
            ):
                time.sleep(0.2)
            [event] = audit_events(fresh_tenant.schema_name, action="retention.applied")
            assert event.data["counts"]["exports"] == 1 and event.data["dry_run"] is False
            with schema_context(fresh_tenant.schema_name):
                assert list(Export.objects.values_list("pk", flat=True)) == [new.pk]
            assert not default_storage.exists(old.file)
        finally:
            default_storage.delete(new.file)


def test_the_beat_task_takes_one_workspace_named_alone(acme, monkeypatch):
    from apps.lifecycle import tasks as lifecycle_tasks

    queued = []
    monkeypatch.setattr(lifecycle_tasks.apply_retention_tenant, "delay", queued.append)
    policy_set(acme, exports_days=7)
    assert lifecycle_tasks.apply_retention("acme") == lifecycle_tasks.apply_retention(["acme"]) == 1
    assert queued == ["acme", "acme"]
