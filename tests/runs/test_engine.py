"""Runs advanced here, in the test's process, against the real database, Redis and checkpoints."""

import itertools

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from apps.providers.services import credential_delete
from apps.runs.checkpoints import checkpoint_connection, checkpointer
from apps.runs.engine import run_advance
from apps.runs.locks import RunLock
from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_cancel, run_decide, run_start
from apps.runs.usage import usage_record, usage_recorded
from foundry.errors import ServiceError
from foundry.runtime.graph import USAGE_ESTIMATED
from tests.conftest import audit_events, tenant_user, usage_rows
from tests.providers.fake_models import Reply, openai_completion
from tests.runs.conftest import FINANCE, TRIAGE, advance, advance_dying_after_record, agent_yaml, deploy, http_tool


def start(tenant, agent, text: str, *, script=None, email=None) -> Run:
    actor = tenant_user(tenant, email or f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        return run_start(actor=actor, agent=agent, input=text, script=script)


def test_a_run_goes_model_tool_model_and_every_step_and_model_call_is_recorded(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    assert run.status == "queued" and run.version.number == 1 and run.project == "accounts-payable"
    calls = []

    def receiver(record, schema, **kw):
        calls.append((schema, record.step))

    usage_recorded.connect(receiver)
    try:
        run = advance(run, "acme")
    finally:
        usage_recorded.disconnect(receiver)
    assert run.status == "succeeded", run.message
    assert run.output == "INV-1001 (420.00 EUR, vendor low risk) can be approved."
    assert run.started_at and run.finished_at and run.started_at <= run.finished_at
    with schema_context("acme"):
        steps = list(Step.objects.filter(run=run))
        assert [(s.index, s.node, s.tool, s.status) for s in steps] == [
            (1, "model", "", "ok"),
            (2, "tool", "find_invoices", "ok"),
            (3, "model", "", "ok"),
        ]
        assert steps[1].arguments == {"question": "Which rules apply to invoices?"}
        assert steps[1].summary.startswith('{"domain": {"name": "finance"')
        usage = sorted(usage_rows(acme, run_id=run.pk), key=lambda u: u.step)
        assert [(u.step, u.provider, u.model, u.project, u.agent) for u in usage] == [
            (1, "scripted", "scripted-1", "accounts-payable", "invoice-triage"),
            (3, "scripted", "scripted-1", "accounts-payable", "invoice-triage"),
        ]
        assert [u.input_tokens for u in usage] == [steps[0].input_tokens, steps[2].input_tokens]
        assert run.input_tokens == sum(u.input_tokens for u in usage) > 0
        assert run.output_tokens == sum(u.output_tokens for u in usage) > 0
        assert run.step_count == 3
        assert audit_events("acme", action="run.start", data={"run": str(run.pk)})
    assert calls == [("acme", 1), ("acme", 3)]


def test_a_rule_match_waits_for_approval_holding_no_worker_then_resumes_when_approved(acme, triage):
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    assert run.status == "waiting_approval"
    with schema_context("acme"):
        approval = Approval.objects.get(run=run)
        assert (approval.step, approval.tool, approval.decision) == (2, "find_invoices", "pending")
        assert approval.arguments == {"amount": 25000}
        assert "large-invoice-needs-approval" in approval.reasons[0]
        assert not Step.objects.filter(run=run, node="tool").exists()
        operator = tenant_user(acme, "operator@acme.test")
        run = run_decide(actor=operator, run=run, approved=True, comment="Checked the PO.")
        assert run.status == "queued"
    run = advance(run, "acme")
    assert run.status == "succeeded"
    with schema_context("acme"):
        tool = Step.objects.get(run=run, node="tool")
        assert tool.status == "ok"
        assert tool.record["approval"]["approved"] is True
        assert tool.record["approval"]["by"] == "operator@acme.test"
        assert tool.record["approval"]["comment"] == "Checked the PO."
        approval = Approval.objects.get(run=run)
        assert (approval.decision, approval.approver, approval.comment) == (
            "approved",
            "operator@acme.test",
            "Checked the PO.",
        )
        assert approval.decided_at is not None
        assert audit_events("acme", action="run.approve", data={"run": str(run.pk)})


def test_a_rejected_call_is_not_made_and_the_model_is_told(acme, triage):
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    with schema_context("acme"):
        run = run_decide(actor=tenant_user(acme, "admin@acme.test"), run=run, approved=False, comment="No PO")
    run = advance(run, "acme")
    assert run.status == "succeeded"
    with schema_context("acme"):
        tool = Step.objects.get(run=run, node="tool")
        assert tool.status == "rejected" and "No PO" in tool.summary
        assert Approval.objects.get(run=run).decision == "rejected"


def test_deciding_a_run_that_does_not_wait_is_refused_and_changes_nothing(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    with schema_context("acme"), pytest.raises(ServiceError) as info:
        run_decide(actor=tenant_user(acme, "owner@acme.test"), run=run, approved=True)
    assert info.value.code == "run_not_waiting" and info.value.status == 409
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "queued"


def test_a_run_of_an_agent_that_is_not_deployed_is_refused(acme):
    with schema_context("acme"):
        owner = tenant_user(acme, "owner@acme.test")
        from apps.catalog.services import version_publish

        version_publish(actor=owner, source=FINANCE)
        agent = version_publish(actor=owner, source=agent_yaml("idle")).version.document
        with pytest.raises(ServiceError) as info:
            run_start(actor=owner, agent=agent, input="hi")
        assert (info.value.code, info.value.status) == ("agent_not_deployed", 409)
        assert not Run.objects.exists()


@pytest.mark.parametrize(
    "text, script, code",
    [
        ("", None, "input_invalid"),
        ("   ", None, "input_invalid"),
        ("x" * 100_001, None, "input_invalid"),
        ("nul\x00", None, "input_invalid"),
        ("hi", "respond", "script_invalid"),
        ("hi", [{"respond": 1}], "script_invalid"),
        ("hi", [{"tool_call": {"tool": "x", "arguments": []}}], "script_invalid"),
        ("hi", [{"respond": "a", "tool_call": {"tool": "x"}}], "script_invalid"),
        ("hi", [{"shell": "rm -rf /"}], "script_invalid"),
    ],
)
def test_bad_input_is_refused_with_a_stable_code(acme, triage, text, script, code):
    with pytest.raises(ServiceError) as info:
        start(acme, triage, text, script=script)
    assert info.value.code == code and info.value.status == 400
    with schema_context("acme"):
        assert not Run.objects.exists()


def test_a_run_keeps_the_versions_it_started_with_when_a_newer_one_is_deployed(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    deploy(acme, TRIAGE.replace("can be approved.", "may be paid."))
    run = advance(run, "acme")
    with schema_context("acme"):
        assert run.version.number == 1 and run.output.endswith("can be approved.")


# --- limits and cancellation ---------------------------------------------------------------


def test_max_steps_ends_the_run_cleanly(acme):
    agent = deploy(acme, FINANCE, agent_yaml(limits="  limits: {max_steps: 3}\n"))
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {}}}] * 5
    run = advance(start(acme, agent, "Loop.", script=script), "acme")
    assert (run.status, run.reason, run.step_count) == ("failed", "max_steps", 3)
    assert "3 steps" in run.message and run.finished_at


def test_max_tokens_ends_the_run_cleanly(acme):
    agent = deploy(acme, FINANCE, agent_yaml(limits="  limits: {max_tokens: 400}\n"))
    script = [{"tool_call": {"tool": "find_invoices", "arguments": {}}}] * 20
    run = advance(start(acme, agent, "Loop.", script=script), "acme")
    assert (run.status, run.reason) == ("failed", "max_tokens")
    assert run.input_tokens + run.output_tokens >= 400


def test_the_time_limit_ends_the_run_cleanly(acme, ledger, loopback_allowed):
    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port), limits="  limits: {timeout_seconds: 1}\n"))
    ledger.delay = 0.6
    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": str(n)}}} for n in range(5)]
    run = advance(start(acme, agent, "Book slowly.", script=script), "acme")
    assert (run.status, run.reason) == ("failed", "timeout")
    assert run.step_count <= 5


def test_a_queued_run_is_cancelled_at_once_and_a_worker_then_leaves_it(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    with schema_context("acme"):
        run = run_cancel(actor=tenant_user(acme, "developer@acme.test"), run=run)
        assert (run.status, run.reason) == ("cancelled", "cancelled")
        assert run_advance(run.pk) == "cancelled"
        assert not Step.objects.filter(run=run).exists()
        # Cancelled again (a retry, or another member): the same answer, nothing more recorded.
        again = run_cancel(actor=tenant_user(acme, "owner@acme.test"), run=run)
        assert (again.pk, again.status) == (run.pk, "cancelled")
    assert len(audit_events("acme", action="run.cancel", data={"run": str(run.pk)})) == 1


def test_cancelling_a_run_waiting_for_approval_closes_the_approval(acme, triage):
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    with schema_context("acme"):
        run = run_cancel(actor=tenant_user(acme, "owner@acme.test"), run=run)
        assert run.status == "cancelled"
        assert Approval.objects.get(run=run).decision == "cancelled"
        with pytest.raises(ServiceError):
            run_decide(actor=tenant_user(acme, "owner@acme.test"), run=run, approved=True)


def test_a_run_someone_else_holds_is_left_alone(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    lock = RunLock("acme", str(run.pk))
    assert lock.acquire()
    try:
        with schema_context("acme"):
            assert run_advance(run.pk) == "locked"
            run.refresh_from_db()
            assert run.status == "queued" and run.step_count == 0
    finally:
        lock.release()
    assert advance(run, "acme").status == "succeeded"


# --- providers ---------------------------------------------------------------------------------


def test_a_run_of_an_agent_whose_provider_is_not_configured_fails_with_a_clear_reason(acme):
    agent = deploy(acme, FINANCE, agent_yaml(provider="openai"))
    run = advance(start(acme, agent, "Hello"), "acme")
    assert (run.status, run.reason) == ("failed", "provider_not_configured")


# --- sub-agents --------------------------------------------------------------------------------


def test_a_subagent_runs_as_a_child_run_of_the_same_tenant(acme):
    deploy(acme, FINANCE, agent_yaml("helper"))
    subagent = "    - name: ask_helper\n      type: subagent\n      description: Ask the helper.\n      agent: helper\n"
    parent = deploy(acme, agent_yaml("lead", tools=subagent))
    script = [{"tool_call": {"tool": "ask_helper", "arguments": {"input": "What is AP?"}}}, {"respond": "done"}]
    run = advance(start(acme, parent, "Delegate.", script=script), "acme")
    assert run.status == "succeeded"
    with schema_context("acme"):
        child = Run.objects.get(parent=run)
        assert (child.parent_step, child.status, child.agent.name, child.input) == (
            2,
            "succeeded",
            "helper",
            "What is AP?",
        )
        tool = Step.objects.get(run=run, node="tool")
        assert tool.status == "ok" and child.output in tool.summary


# --- isolation ---------------------------------------------------------------------------------


def test_another_tenant_cannot_reach_a_run_or_its_checkpoints(acme, globex, triage):
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    thread = {"configurable": {"thread_id": str(run.pk), "checkpoint_ns": ""}}
    assert checkpointer("acme").get_tuple(thread) is not None
    assert checkpointer("globex").get_tuple(thread) is None
    assert list(checkpointer("globex").list(thread)) == []
    with schema_context("globex"):
        assert run_advance(run.pk) == "missing"
        assert not Run.objects.filter(pk=run.pk).exists()
        assert not usage_rows(globex, run_id=run.pk)
    # The saver's search path lasted only for its own transactions.
    with checkpoint_connection().cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert "acme" not in cursor.fetchone()["search_path"]
    assert connection.schema_name == "public"


def test_the_demo_data_runs_end_to_end_one_run_waiting_for_an_approval(acme, globex, demo_owns_the_fixtures):
    from django.core.management import call_command

    call_command("demo_data", "--force")
    call_command("demo_data", "--force")  # idempotent: no second batch of runs
    outcomes = {}
    for schema in ("acme", "globex"):
        with schema_context(schema):
            for run in Run.objects.all():
                outcomes[(schema, run.agent.name, run.input)] = advance(run, schema).status
    assert outcomes == {
        ("acme", "invoice-triage", "Triage invoice INV-1001."): "succeeded",
        ("acme", "invoice-triage", "Look up the 25,000 EUR invoice."): "waiting_approval",
        ("globex", "shipment-tracker", "Where is shipment SH-1?"): "succeeded",
    }


# --- http tools: SSRF ----------------------------------------------------------------------------


def test_an_http_tool_cannot_reach_loopback_unless_operators_allow_it_for_that_tenant(acme, globex, ledger):
    from django.core.management import call_command

    script = [{"tool_call": {"tool": "ledger", "arguments": {"id": "1"}}}, {"respond": "done"}]
    agent = deploy(acme, FINANCE, agent_yaml(tools=http_tool(ledger.port)))
    run = advance(start(acme, agent, "Book.", script=script), "acme")
    with schema_context("acme"):
        step = Step.objects.get(run=run, node="tool")
    assert (step.status, step.error) == ("error", "http_address_refused"), step.summary
    assert "127.0.0.1" in step.summary and ledger.requests == {}

    call_command("tenant_http_networks", "globex", "--allow", "127.0.0.0/8")
    run = advance(start(acme, agent, "Book.", script=script), "acme")  # globex's setting: not acme's
    with schema_context("acme"):
        assert Step.objects.get(run=run, node="tool").error == "http_address_refused"
    assert ledger.requests == {}

    call_command("tenant_http_networks", "acme", "--allow", "127.0.0.1/32")
    run = advance(start(acme, agent, "Book.", script=script), "acme")
    with schema_context("acme"):
        assert Step.objects.get(run=run, node="tool").status == "ok"
    assert ledger.booked == ["/entries/1"]
    assert ledger.requests[f"{run.pk}:2"] == 1


@pytest.mark.parametrize("value", ["nonsense", "0.0.0.0/0", "::/0"])
def test_an_operator_setting_a_bad_network_gets_a_clear_error(acme, value):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=r"network|every address"):
        call_command("tenant_http_networks", "acme", "--allow", value)
    acme.refresh_from_db()
    assert acme.http_allowed_networks == []


# --- the sweep for runs that lost their task -----------------------------------------------------


def test_the_sweep_requeues_only_stale_unlocked_runs_of_its_tenant(acme, globex, triage, settings):
    import json
    import uuid
    from datetime import timedelta

    import redis
    from django.utils import timezone

    from apps.runs.tasks import run_sweep_tenant

    settings.FOUNDRY_RUNS_QUEUE = queue = f"sweep-{uuid.uuid4().hex[:8]}"
    stale, locked, fresh = (start(acme, triage, "Triage invoice INV-1001.") for _ in range(3))
    with schema_context("acme"):
        Run.objects.filter(pk__in=[stale.pk, locked.pk]).update(updated_at=timezone.now() - timedelta(hours=1))
    lock = RunLock("acme", str(locked.pk))
    assert lock.acquire()
    try:
        assert run_sweep_tenant.apply(args=["globex"]).get() == 0  # not globex's runs
        assert run_sweep_tenant.apply(args=["acme"]).get() == 1
        # Its copy is on its way: the next sweeps do not send another while it waits in the queue.
        assert run_sweep_tenant.apply(args=["acme"]).get() == 0
    finally:
        lock.release()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        messages = [json.loads(m) for m in broker.lrange(queue, 0, -1)]
        assert [m["headers"]["task"] for m in messages] == ["runs.execute"]
        assert messages[0]["headers"]["argsrepr"] == repr(["acme", str(stale.pk)])
    finally:
        broker.delete(queue)
    assert fresh.status == "queued"


def test_an_openai_agent_runs_against_an_openai_compatible_server_and_every_call_is_accounted(acme, openai_agent):
    """The tenant's stored (encrypted) credentials reach a real HTTP server speaking the
    chat-completions wire format; tool calls go both ways; usage comes from its `usage` fields."""
    server, agent = openai_agent
    server.queue(
        Reply(
            body=openai_completion(
                tool_calls=[("call_a", "find_invoices", {"question": "rules?"})],
                prompt_tokens=120,
                completion_tokens=9,
            )
        ),
        Reply(
            body=openai_completion(
                "Invoices above 10,000 need approval.", prompt_tokens=300, completion_tokens=11, cached_tokens=100
            )
        ),
    )
    run = advance(start(acme, agent, "What rules apply?"), "acme")
    assert run.status == "succeeded", run.message
    assert run.output == "Invoices above 10,000 need approval."
    assert (run.input_tokens, run.output_tokens, run.cached_tokens) == (420, 20, 100)
    first, second = server.requests
    assert first.path == "/v1/chat/completions" and first.headers["authorization"] == "Bearer sk-test-abcdef123456"
    assert first.json["model"] == "openai-1"
    assert [t["function"]["name"] for t in first.json["tools"]] == ["find_invoices"]
    assert second.json["messages"][-1]["role"] == "tool" and second.json["messages"][-1]["tool_call_id"] == "call_a"
    usage = [
        (u.step, u.provider, u.model, u.input_tokens, u.output_tokens, u.cached_tokens)
        for u in sorted(usage_rows(acme, run_id=run.pk), key=lambda u: u.step)
    ]
    assert usage == [(1, "openai", "openai-1", 120, 9, 0), (3, "openai", "openai-1", 300, 11, 100)]


# --- bookkeeping: claims, step records, usage ------------------------------------------------


def test_a_model_call_is_counted_once_per_step_and_announced_once(acme, triage):
    run = start(acme, triage, "Triage invoice INV-1001.")
    calls = []

    def receiver(record, schema, **kw):
        calls.append((schema, record.step, record.pk))

    usage_recorded.connect(receiver)
    try:
        with schema_context("acme"):
            fields = {"project": "p", "agent": "a", "run_id": run.pk, "step": 1, "provider": "scripted", "model": "m"}
            first = usage_record(tenant_id=acme.pk, **fields, input_tokens=5, output_tokens=2)
            again = usage_record(tenant_id=acme.pk, **fields, input_tokens=50, output_tokens=20)
        rows = [(u.pk, u.step, u.input_tokens) for u in usage_rows(acme, run_id=run.pk)]
    finally:
        usage_recorded.disconnect(receiver)
    assert first is not None and again is None
    assert rows == [(first.pk, 1, 5)]
    assert calls == [("acme", 1, first.pk)]


def test_runs_that_may_not_run_are_settled_and_a_lost_run_within_the_limit_recovers(acme, triage, settings):
    from django.utils import timezone

    settings.FOUNDRY_RUN_MAX_RECOVERIES = 2
    lost, recovering, cancelled = (start(acme, triage, "Triage invoice INV-1001.") for _ in range(3))
    now = timezone.now()
    with schema_context("acme"):
        Run.objects.filter(pk=lost.pk).update(status="running", started_at=now, recoveries=2)
        Run.objects.filter(pk=recovering.pk).update(status="running", started_at=now, recoveries=1)
        Run.objects.filter(pk=cancelled.pk).update(cancel_requested_at=now)
    lost, recovering, cancelled = (advance(run, "acme") for run in (lost, recovering, cancelled))
    assert (lost.status, lost.reason, lost.recoveries, lost.step_count) == ("failed", "worker_lost", 3, 0)
    assert (recovering.status, recovering.recoveries, recovering.step_count) == ("succeeded", 2, 3)
    assert (cancelled.status, cancelled.reason, cancelled.step_count) == ("cancelled", "cancelled", 0)
    with schema_context("acme"):
        assert not Step.objects.filter(run__in=[lost, cancelled]).exists()


def test_a_worker_lost_right_after_an_approved_call_leaves_it_to_be_replayed_not_made_again(acme, triage, monkeypatch):
    run = advance(start(acme, triage, "Look up the 25,000 EUR invoice."), "acme")
    with schema_context("acme"):
        run_decide(actor=tenant_user(acme, "owner@acme.test"), run=run, approved=True, comment="ok")
    advance_dying_after_record(run, monkeypatch, 2)
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "running"
        made = Step.objects.get(run=run, index=2)

    run = advance(run, "acme")
    assert (run.status, run.recoveries, run.step_count) == ("succeeded", 1, 3), run.message
    with schema_context("acme"):
        steps = list(Step.objects.filter(run=run))
        assert [(s.index, s.node, s.status) for s in steps] == [
            (1, "model", "ok"),
            (2, "tool", "ok"),
            (3, "model", "ok"),
        ]
        assert steps[1].pk == made.pk and steps[1].record["approval"]["approved"] is True
        assert sorted(u.step for u in usage_rows(acme, run_id=run.pk)) == [1, 3]


def test_every_statement_of_a_saver_call_runs_in_its_own_tenants_schema(acme, globex, triage):
    """Two tenants' graphs checkpoint at the same time through one connection (async writes from
    LangGraph's threads). Had a statement run without its call's search path, it would land in
    the other tenant's schema or in a decoy schema that unqualified names reach by default."""
    import threading
    import uuid

    from psycopg import sql

    from foundry.runtime import AgentGraph, ScriptedProvider

    with schema_context("acme"):
        manifest, domain = triage.live.version.content, triage.live.domain_version.content
    conn = checkpoint_connection()
    with conn.cursor() as cursor:
        cursor.execute("SELECT current_user AS name, current_setting('search_path') AS path")
        decoy, default_path = cursor.fetchone().values()
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(decoy)))
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
            cursor.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(decoy, table), sql.Identifier("acme", table)
                )
            )
    try:
        savers = {"acme": checkpointer("acme"), "globex": checkpointer("globex")}
        assert savers["acme"].conn is savers["globex"].conn and savers["acme"].lock is savers["globex"].lock
        script = [{"tool_call": {"tool": "find_invoices", "arguments": {"question": "Rules?"}}}] * 3
        script.append({"respond": "Done."})
        tag = uuid.uuid4().hex[:8]
        outcomes, errors = [], []

        def runs(schema: str) -> None:
            try:
                for n in range(4):
                    graph = AgentGraph(
                        manifest,
                        domain,
                        provider=ScriptedProvider(script),
                        checkpointer=savers[schema],
                        durability="async",
                    )
                    thread = f"{tag}-{schema}-{n}"
                    outcomes.append((schema, graph.start(thread, "Go.").status))
                    assert graph.inspect(thread).step_count == 7
                    assert len(list(savers[schema].list({"configurable": {"thread_id": thread}}))) > 7
            except BaseException as exc:  # noqa: BLE001 — reported below
                errors.append(exc)

        threads = [threading.Thread(target=runs, args=(schema,)) for schema in ("acme", "globex")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sorted(outcomes) == [("acme", "succeeded")] * 4 + [("globex", "succeeded")] * 4

        with conn.cursor() as cursor:
            for schema, table in itertools.product(("acme", "globex", decoy), ("checkpoints", "checkpoint_writes")):
                cursor.execute(
                    sql.SQL(
                        "SELECT split_part(thread_id, '-', 2) AS owner, count(*) FROM {} WHERE thread_id LIKE %s"
                        " GROUP BY 1"
                    ).format(sql.Identifier(schema, table)),
                    [f"{tag}-%"],
                )
                owners = {row["owner"] for row in cursor.fetchall()}
                assert owners == (set() if schema == decoy else {schema}), (schema, table, owners)
            cursor.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(decoy, "checkpoint_blobs")))
            assert cursor.fetchone()["n"] == 0
            cursor.execute("SHOW search_path")
            assert cursor.fetchone()["search_path"] == default_path
    finally:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(decoy)))


def test_a_statement_prepared_in_one_tenants_schema_reads_the_other_tenants_tables_in_theirs(acme, globex):
    """The checkpoint connection prepares its statements (on the main database): the same
    prepared statement, run under another tenant's search path, reads that tenant's tables."""
    import uuid

    from langgraph.checkpoint.base import empty_checkpoint

    thread = f"prepared-{uuid.uuid4().hex[:8]}"  # one thread id in both schemas
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for schema in ("acme", "globex"):
        checkpointer(schema).put(config, empty_checkpoint(), {"source": "input", "step": -1, "owner": schema}, {})
    conn = checkpoint_connection()
    assert conn.prepare_threshold is not None
    for _ in range(8):  # get_tuple's statements are prepared now
        assert checkpointer("acme").get_tuple(config).metadata["owner"] == "acme"
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) AS n FROM pg_prepared_statements")
        assert cursor.fetchone()["n"] > 0
    for schema in ("globex", "acme", "globex"):  # alternating: each read is of its own schema's row
        assert checkpointer(schema).get_tuple(config).metadata["owner"] == schema
    assert [t.metadata["owner"] for t in checkpointer("globex").list(config)] == ["globex"]


def test_checkpoints_on_a_database_url_of_their_own_are_never_prepared(db, settings):
    """FOUNDRY_CHECKPOINT_DATABASE_URL may be a transaction pooler, which hands a statement
    prepared on one server connection to other clients' transactions: nothing is prepared there."""
    from apps.runs.checkpoints import checkpoint_connection_close

    db = connection.settings_dict
    settings.FOUNDRY_CHECKPOINT_DATABASE_URL = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    checkpoint_connection_close()
    try:
        conn = checkpoint_connection()
        assert conn.prepare_threshold is None
        thread = {"configurable": {"thread_id": "never-prepared", "checkpoint_ns": ""}}
        for _ in range(8):
            assert checkpointer("acme").get_tuple(thread) is None
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) AS n FROM pg_prepared_statements")
            assert cursor.fetchone()["n"] == 0
    finally:
        checkpoint_connection_close()


@pytest.mark.parametrize("database", [None, "postgres"], ids=["main", "another"])
def test_a_checkpoint_url_is_another_way_to_the_main_database_never_another_database(db, settings, database):
    """Through a URL of their own to the main database (a pooler), checkpoint writes are fenced
    by the claim and commit without the flush; a URL reaching another database is refused: the
    checkpoint tables are the workspace schema's own, which export, import, backups and purges
    handle with the schema (another database has none of them)."""
    from django.core.exceptions import ImproperlyConfigured

    from apps.runs.checkpoints import checkpoint_connection_close

    main = connection.settings_dict
    settings.FOUNDRY_CHECKPOINT_DATABASE_URL = (
        f"postgres://{main['USER']}:{main['PASSWORD']}@{main['HOST'] or '127.0.0.1'}:{main['PORT'] or 5432}/"
        f"{database or main['NAME']}"
    )
    checkpoint_connection_close()
    try:
        if database is not None:
            with pytest.raises(ImproperlyConfigured, match="another database"):
                checkpointer("acme")
            return
        saver = checkpointer("acme", claim=("7c9e6679-7425-40de-944b-e07fc1f90ae7", 1))
        assert saver.claim is not None and saver.relaxed
    finally:
        checkpoint_connection_close()


def test_the_saver_prunes_a_thread_in_its_own_schema_only(acme, globex, triage):
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    thread = {"configurable": {"thread_id": str(run.pk), "checkpoint_ns": ""}}
    checkpointer("globex").prune([str(run.pk)], strategy="delete")  # another tenant: nothing of acme's goes
    assert checkpointer("acme").get_tuple(thread) is not None
    checkpointer("acme").prune([str(run.pk)], strategy="delete")
    assert checkpointer("acme").get_tuple(thread) is None
    with pytest.raises(ValueError, match="delta channels"):
        checkpointer("acme").prune([str(run.pk)], strategy="keep_latest")
    with pytest.raises(TypeError):
        checkpointer("acme").prune(str(run.pk), strategy="delete")


def test_http_policy_is_every_tenants_networks_and_the_ones_the_claim_read(settings):
    """Not the tenant a task loaded earlier (a sub-agent's parent's, minutes before): the list the
    attempt's claim read, which every later look compares with (tests/runs/test_network_change_mid_run.py)."""
    import ipaddress

    from apps.runs.engine import http_policy

    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("10.9.0.0/16")]
    assert http_policy(["10.1.0.0/16"]).allowed_networks == (
        ipaddress.ip_network("10.9.0.0/16"),
        ipaddress.ip_network("10.1.0.0/16"),
    )
    assert http_policy([]).allowed_networks == (ipaddress.ip_network("10.9.0.0/16"),)


def test_suspending_the_tenant_stops_a_run_and_resuming_it_lets_it_go_on(acme, triage, monkeypatch):
    from apps.runs import engine
    from apps.tenants.services import tenant_resume, tenant_suspend

    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)  # look at every step, not every 5 s
    run = start(acme, triage, "Triage invoice INV-1001.")
    tenant_suspend(tenant=acme)
    with schema_context("acme"):
        assert run_advance(run.pk) == "suspended"
        run.refresh_from_db()
        assert (run.status, run.step_count, run.recoveries) == ("queued", 0, 0)
    tenant_resume(tenant=acme)
    assert advance(run, "acme").status == "succeeded"


def test_text_no_column_can_hold_is_replaced_not_fatal(acme, openai_agent):
    """A model answering with a NUL character does not break the run or its records."""
    server, agent = openai_agent
    server.queue(Reply(body=openai_completion("nul \u0000 here \ud800")))
    run = advance(start(acme, agent, "Say something odd."), "acme")
    assert run.status == "succeeded", run.message
    assert run.output == "nul \ufffd here \ufffd"
    with schema_context("acme"):
        assert Step.objects.get(run=run).summary == "nul \ufffd here \ufffd"


def test_cancelling_a_run_cancels_its_sub_agent_runs(acme, triage):
    from django.utils import timezone

    parent = start(acme, triage, "Triage invoice INV-1001.")
    with schema_context("acme"):
        Run.objects.filter(pk=parent.pk).update(status="running", started_at=timezone.now())
        child = Run.objects.create(
            agent=parent.agent, deployment=parent.deployment, version=parent.version,
            domain_version=parent.domain_version, project="p", provider="scripted", model="m", input="x",
            created_by="test", parent=parent, parent_step=2, status="running",
        )  # fmt: skip
        grandchild = Run.objects.create(
            agent=parent.agent, deployment=parent.deployment, version=parent.version,
            domain_version=parent.domain_version, project="p", provider="scripted", model="m", input="y",
            created_by="test", parent=child, parent_step=2, status="queued",
        )  # fmt: skip
        run_cancel(actor=tenant_user(acme, "owner@acme.test"), run=parent)
        statuses = {r.pk: (r.status, r.cancel_requested_at is not None) for r in Run.objects.all()}
    assert statuses[parent.pk] == ("running", True)  # stops before its next step
    assert statuses[child.pk] == ("running", True)
    assert statuses[grandchild.pk] == ("cancelled", True)


def test_a_stalled_worker_that_finds_its_step_recorded_by_another_stops_without_touching_the_run(acme, triage):
    """The step's unique (run, index) key fences a worker that lost its lock without noticing."""
    from django.utils import timezone

    run = start(acme, triage, "Triage invoice INV-1001.")
    with schema_context("acme"):
        # What the worker that took over has recorded already: step 1.
        Step.objects.create(
            run=run, index=1, node="model", status="ok", record={}, replay={}, created_at=timezone.now()
        )
        assert run_advance(run.pk) == "lock_lost"
        run.refresh_from_db()
    assert run.status == "running" and run.finished_at is None  # left to the worker that owns it


def test_an_http_tool_calling_its_own_workspace_gets_a_read_only_service_token(acme, live_port, loopback_allowed):
    """The platform calling itself: an agent's http tool reaching its own workspace's API carries a
    short-lived service token (viewer, read); reaching another workspace, it carries none."""

    def get_tool(name: str, host: str) -> str:
        return f"""    - name: {name}
      type: http
      description: Read a workspace.
      method: GET
      url: http://{host}:{live_port}/api/v1/workspace
      hosts: ["{host}"]
      timeout_seconds: 10
"""

    tools = get_tool("own", "acme.localhost") + get_tool("other", "globex.localhost")
    script = [
        {"tool_call": {"tool": "own", "arguments": {}}},
        {"tool_call": {"tool": "other", "arguments": {}}},
        {"respond": "done"},
    ]
    agent = deploy(acme, FINANCE, agent_yaml(tools=tools))
    run = advance(start(acme, agent, "Read.", script=script), "acme")
    with schema_context("acme"):
        own, other = Step.objects.filter(run=run, node="tool").order_by("index")
    assert own.status == "ok", own.summary
    assert '"status": 200' in own.summary and "acme" in own.summary
    assert (other.status, other.error) == ("error", "http_status"), other.summary
    assert '"status": 401' in other.summary


def test_a_sub_agent_resumed_by_its_own_task_counts_as_deep_as_it_is(acme, settings):
    """lead -> mid -> leaf is two levels; with a limit of one, mid may not call leaf — also after
    mid waited for an approval and its own task (depth unknown in memory) resumed it."""
    settings.FOUNDRY_SUBAGENT_MAX_DEPTH = 1

    def subagent(name: str, agent: str) -> str:
        return f"    - name: {name}\n      type: subagent\n      description: Ask {agent}.\n      agent: {agent}\n"

    gated = (
        "  approvals:\n    tools: [ask_leaf]\n  tests:\n    - name: asks-leaf\n      input: Ask the leaf.\n"
        '      script:\n        - tool_call: {tool: ask_leaf, arguments: {input: "Hello leaf."}}\n'
        "        - respond: mid done\n"
    )
    deploy(acme, FINANCE, agent_yaml("leaf"))
    deploy(acme, agent_yaml("mid", tools=subagent("ask_leaf", "leaf"), limits=gated))
    lead = deploy(acme, agent_yaml("lead", tools=subagent("ask_mid", "mid")))
    script = [{"tool_call": {"tool": "ask_mid", "arguments": {"input": "Ask the leaf."}}}, {"respond": "lead done"}]
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=lead, input="Delegate twice.", script=script)
    run = advance(run, "acme")
    with schema_context("acme"):
        mid = Run.objects.get(parent=run)
        assert mid.status == "waiting_approval"
        run_decide(actor=tenant_user(acme, "operator@acme.test"), run=mid, approved=True)
    mid = advance(mid, "acme")  # as the task run_decide queued: run_advance(mid.pk)
    with schema_context("acme"):
        assert not Run.objects.filter(parent=mid).exists()
        assert Step.objects.get(run=mid, node="tool").error == "subagent_too_deep"


def test_a_model_call_whose_endpoint_reports_no_usage_is_marked_estimated_on_its_step(acme, openai_agent):
    """docs/providers.md: counted with the offline tokenizer, and the step says so (the steps API's
    and the run page's warnings)."""
    from tests.runs.test_api import client

    server, agent = openai_agent
    server.queue(Reply(body=openai_completion("abcdefgh", usage=False)))
    run = advance(start(acme, agent, "a" * 8), "acme")
    assert run.status == "succeeded", run.message
    steps = client(acme).get(f"/api/v1/runs/{run.pk}/steps").json()["steps"]
    assert [step["warnings"] for step in steps] == [[USAGE_ESTIMATED]]
    assert steps[0]["output_tokens"] == 2


def test_a_run_that_fails_while_it_waits_for_an_approval_keeps_no_approval_pending(acme, openai_agent):
    """A copy of a waiting run's task, delivered before anyone decided, claims the run and builds its
    graph: failing there (its provider's credentials removed meanwhile) ends the run, and the
    approval closes with it (`cancelled`) rather than staying `pending` on a finished run, listed
    as waiting for a decision that would be refused."""
    server, agent = openai_agent
    server.queue(
        Reply(body=openai_completion(tool_calls=[("call_1", "find_invoices", {"amount": 25000, "question": "x"})]))
    )
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        run = run_start(actor=owner, agent=agent, input="Look up the big invoice.")
    run = advance(run, "acme")
    assert run.status == Run.Status.WAITING_APPROVAL
    with schema_context("acme"):
        credential_delete(actor=owner, provider="openai")
    run = advance(run, "acme")  # the second delivery
    assert (run.status, run.reason) == ("failed", "provider_not_configured")
    with schema_context("acme"):
        assert list(Approval.objects.filter(run=run).values_list("decision", flat=True)) == ["cancelled"]
