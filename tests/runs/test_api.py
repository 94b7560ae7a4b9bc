"""/api/v1/runs: start, follow, decide and cancel runs over the API; roles, scopes, bad input, isolation."""

import json
from datetime import UTC, timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.catalog.models import Document
from apps.catalog.services import version_publish
from apps.runs.models import Approval, Run, Step
from tests.api.conftest import api, issue
from tests.conftest import audit_events, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, agent_yaml, deploy

SMALL = "Triage invoice INV-1001."  # the manifest's test: find_invoices, then an answer
LARGE = "Look up the 25,000 EUR invoice."  # the manifest's test whose call a DIS rule sends to approval


def client(tenant, role: str = "admin", scopes=("read", "write", "run", "admin")):
    return api(tenant, issue(tenant, role=role, scopes=scopes))


def post(client, path: str, body=None):
    return client.post(path, json.dumps(body if body is not None else {}), content_type="application/json")


def make_run(tenant, agent: Document, **fields) -> Run:
    """A run row as a worker would have left it (no worker involved)."""
    with schema_context(tenant.schema_name):
        live = Document.objects.select_related("live__version", "live__domain_version").get(pk=agent.pk).live
        return Run.objects.create(
            **{
                "agent": agent,
                "deployment": live,
                "version": live.version,
                "domain_version": live.domain_version,
                "project": "accounts-payable",
                "provider": "scripted",
                "model": "scripted-1",
                "input": "hello",
                "created_by": "test",
                **fields,
            }
        )


def waiting_run(tenant, agent: Document) -> Run:
    """A run waiting for approval of its step 2, with its steps and the pending approval."""
    run = make_run(tenant, agent, status=Run.Status.WAITING_APPROVAL, step_count=1, started_at=timezone.now())
    with schema_context(tenant.schema_name):
        Step.objects.create(
            run=run,
            index=1,
            node="model",
            status="ok",
            summary="calls find_invoices",
            provider="scripted",
            model="scripted-1",
            input_tokens=40,
            output_tokens=5,
            duration_ms=1.5,
            record={"index": 1, "tool_calls": ["find_invoices"]},
            replay={"message": {"internal": "never shown"}},
        )
        Approval.objects.create(
            run=run,
            step=2,
            tool="find_invoices",
            tool_call_id="call-1",
            arguments={"amount": 25000},
            reasons=["large-invoice"],
        )
    return run


@pytest.fixture
def globex_triage(globex):
    return deploy(globex, FINANCE, TRIAGE)


# --- start and follow -------------------------------------------------------------------------


def test_it_starts_a_run_and_follows_it_to_the_end(acme, triage):
    operator = client(acme, role="operator", scopes=("read", "run"))
    response = post(operator, "/api/v1/runs", {"agent": "invoice-triage", "input": SMALL})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert (body["agent"], body["version"], body["domain"]) == ("invoice-triage", 1, {"name": "finance", "version": 1})
    assert (body["provider"], body["model"], body["project"]) == ("scripted", "scripted-1", "accounts-payable")
    assert body["input"] == SMALL and body["output"] is None and body["parent"] is None
    assert body["created_by"].startswith("API token ")
    with schema_context("acme"):
        run = Run.objects.get(pk=body["id"])
        assert audit_events("acme", action="run.start", data={"run": body["id"]})

    advance(run, "acme")
    detail = operator.get(f"/api/v1/runs/{run.pk}").json()
    assert detail["status"] == "succeeded"
    assert detail["output"] == "INV-1001 (420.00 EUR, vendor low risk) can be approved."
    assert detail["step_count"] == 3 and detail["input_tokens"] > 0 and detail["finished_at"]

    steps = operator.get(f"/api/v1/runs/{run.pk}/steps").json()
    assert steps["next_page_token"] == ""
    assert [(s["index"], s["node"], s["tool"], s["status"]) for s in steps["steps"]] == [
        (1, "model", "", "ok"),
        (2, "tool", "find_invoices", "ok"),
        (3, "model", "", "ok"),
    ]
    assert steps["steps"][1]["arguments"] == {"question": "Which rules apply to invoices?"}
    assert steps["steps"][0]["input_tokens"] > 0 and steps["steps"][0]["provider"] == "scripted"
    for step in steps["steps"]:
        assert "replay" not in step and "record" not in step
        assert set(step) >= {"summary", "duration_ms", "warnings", "error", "output_tokens", "created_at"}


def test_step_lists_filter_and_order(acme, triage):
    reader = client(acme, role="viewer", scopes=("read",))
    run = advance(make_run(acme, triage, input=SMALL), "acme")
    path = f"/api/v1/runs/{run.pk}/steps"

    def indexes(**params):
        response = reader.get(path, params)
        assert response.status_code == 200, response.content
        return [s["index"] for s in response.json()["steps"]]

    assert indexes(filter="node = tool") == [2]
    assert indexes(filter='tool = "find_*"') == [2]
    assert indexes(filter="node = model AND index > 1") == [3]
    assert indexes(filter="status = ok", order_by="index desc") == [3, 2, 1]
    assert indexes(filter="status = error") == []
    assert indexes(page_size="2") == [1, 2]
    token = reader.get(path, {"page_size": 2}).json()["next_page_token"]
    assert indexes(page_size="2", page_token=token) == [3]


def test_run_lists_filter_order_and_page(acme, triage):
    admin = client(acme)
    now = timezone.now()
    old = make_run(acme, triage, status=Run.Status.SUCCEEDED, created_at=now - timedelta(hours=2), finished_at=now)
    failed = make_run(acme, triage, status=Run.Status.FAILED, reason="max_steps", created_at=now - timedelta(hours=1))
    child = make_run(acme, triage, parent=failed, parent_step=2, created_at=now)
    clerk = deploy(acme, agent_yaml("clerk"))
    other = make_run(acme, clerk, created_at=now - timedelta(minutes=30))

    def ids(**params):
        response = admin.get("/api/v1/runs", params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["runs"]]

    assert ids() == [str(child.pk), str(other.pk), str(failed.pk), str(old.pk)]
    assert ids(filter="status = succeeded") == [str(old.pk)]
    assert ids(filter="status = (failed OR succeeded)", order_by="created_at") == [str(old.pk), str(failed.pk)]
    assert ids(filter='agent = "clerk"') == [str(other.pk)]
    assert ids(filter='reason = "max_steps"') == [str(failed.pk)]
    assert ids(filter=f'parent = "{failed.pk}"') == [str(child.pk)]
    assert ids(filter="parent = null AND agent = invoice-triage") == [str(failed.pk), str(old.pk)]
    assert ids(filter="finished_at != null") == [str(old.pk)]
    assert ids(filter=f'created_at < "{(now - timedelta(minutes=45)).isoformat()}"') == [str(failed.pk), str(old.pk)]
    assert ids(filter=f'id = "{other.pk}"') == [str(other.pk)]

    first = admin.get("/api/v1/runs", {"page_size": 3}).json()
    assert [r["id"] for r in first["runs"]] == [str(child.pk), str(other.pk), str(failed.pk)]
    second = admin.get("/api/v1/runs", {"page_size": 3, "page_token": first["next_page_token"]}).json()
    assert [r["id"] for r in second["runs"]] == [str(old.pk)] and second["next_page_token"] == ""


@pytest.mark.parametrize(
    ("params", "code", "position"),
    [
        ({"filter": "colour = red"}, "unknown_field", 0),
        ({"filter": "status = sleeping"}, "invalid_value", 9),
        ({"filter": 'parent = "not-a-uuid"'}, "invalid_value", 9),
        ({"filter": "step_count > many"}, "invalid_value", 13),
        ({"filter": "status > queued"}, "unsupported_operator", None),
        ({"order_by": "input"}, "unknown_order_field", 0),
        ({"page_size": "-1"}, "invalid_page_size", None),
        ({"page_token": "forged"}, "invalid_page_token", None),
    ],
)
def test_bad_list_parameters_are_400_with_a_stable_code(acme, triage, params, code, position):
    response = client(acme).get("/api/v1/runs", params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    if position is not None:
        assert error["position"] == position


@pytest.fixture
def some_runs(acme, triage):
    """(a finished run with three steps, an admin client), with two more runs beside it."""
    done = advance(make_run(acme, triage, input=SMALL), "acme")
    waiting_run(acme, triage)
    make_run(acme, triage)
    return done, client(acme)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    resource=st.sampled_from(["runs", "steps", "approvals"]),
    params=st.fixed_dictionaries(
        {},
        optional={
            "filter": st.text(max_size=40),
            "order_by": st.text(max_size=20),
            "page_size": st.sampled_from(["1", "2", ""]) | st.text(max_size=4),
            "page_token": st.text(max_size=30),
        },
    ),
)
def test_no_list_query_gets_a_5xx(acme, some_runs, resource, params):
    path = "/api/v1/runs" if resource == "runs" else f"/api/v1/runs/{some_runs[0].pk}/{resource}"
    response = some_runs[1].get(path, params)
    assert response.status_code in (200, 400), (path, params, response.content)


def test_bad_step_and_approval_filters_are_400(acme, triage):
    run = make_run(acme, triage)
    admin = client(acme)
    response = admin.get(f"/api/v1/runs/{run.pk}/steps", {"filter": "node = thinking"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_value"
    response = admin.get(f"/api/v1/runs/{run.pk}/approvals", {"filter": "decision = maybe"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_value"


# --- approvals --------------------------------------------------------------------------------


def test_an_operator_approves_and_the_run_goes_on(acme, triage):
    run = advance(make_run(acme, triage, input=LARGE), "acme")
    assert run.status == "waiting_approval"
    operator = client(acme, role="operator", scopes=("read", "run"))
    approvals = operator.get(f"/api/v1/runs/{run.pk}/approvals").json()["approvals"]
    assert [(a["step"], a["tool"], a["arguments"], a["decision"]) for a in approvals] == [
        (2, "find_invoices", {"amount": 25000}, "pending")
    ]
    assert approvals[0]["reasons"]

    response = post(operator, f"/api/v1/runs/{run.pk}/approve", {"comment": "Checked with the vendor."})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued"
    decided = operator.get(f"/api/v1/runs/{run.pk}/approvals", {"filter": "decision = approved"}).json()["approvals"]
    assert len(decided) == 1
    assert decided[0]["comment"] == "Checked with the vendor." and decided[0]["approver"].startswith("API token ")
    assert decided[0]["decided_at"]

    run = advance(run, "acme")
    assert run.status == "succeeded"
    tools = operator.get(f"/api/v1/runs/{run.pk}/steps", {"filter": "node = tool"}).json()["steps"]
    assert [(s["tool"], s["status"]) for s in tools] == [("find_invoices", "ok")]


def test_an_admin_rejects_and_the_call_is_not_made(acme, triage):
    run = advance(make_run(acme, triage, input=LARGE), "acme")
    admin = client(acme)
    response = post(admin, f"/api/v1/runs/{run.pk}/reject", {})
    assert response.status_code == 200, response.content
    with schema_context("acme"):
        approval = Approval.objects.get(run=run)
        assert (approval.decision, approval.comment) == ("rejected", "")
        assert audit_events("acme", action="run.reject", data={"run": str(run.pk)})
    run = advance(run, "acme")
    tools = admin.get(f"/api/v1/runs/{run.pk}/steps", {"filter": "node = tool"}).json()["steps"]
    assert [(s["tool"], s["status"]) for s in tools] == [("find_invoices", "rejected")]


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        ("viewer", ("read", "write", "run", "admin")),
        ("developer", ("read", "write", "run", "admin")),
        ("operator", ("read",)),  # the role may, the token may not
    ],
)
@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_who_may_not_decide_is_refused_and_nothing_changes(acme, triage, role, scopes, verb):
    run = waiting_run(acme, triage)
    response = post(client(acme, role=role, scopes=scopes), f"/api/v1/runs/{run.pk}/{verb}", {"comment": "no"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "waiting_approval"
        assert Approval.objects.get(run=run).decision == "pending"


def test_deciding_a_run_that_does_not_wait_is_409(acme, triage):
    run = make_run(acme, triage, status=Run.Status.RUNNING)
    response = post(client(acme), f"/api/v1/runs/{run.pk}/approve", {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_not_waiting"


def test_deciding_an_unknown_run_or_another_workspaces_is_404_whatever_the_body(acme, globex, triage):
    other = waiting_run(acme, triage)  # acme's, asked for on globex's host
    admin = client(globex, role="owner")
    for run_id in ("8f1c2f0e-6f38-4d0e-9a51-4b1f52a1c0de", other.pk):
        for verb in ("approve", "reject"):
            response = post(admin, f"/api/v1/runs/{run_id}/{verb}", {"comment": 7})
            assert response.status_code == 404, (verb, response.status_code, response.content)
            assert response.json()["error"]["code"] == "not_found"
    with schema_context("acme"):
        assert Approval.objects.get(run=other).decision == "pending"


@pytest.mark.parametrize(
    "body", [{"comment": 7}, {"comment": ["a"]}, {"comment": "x" * 2001}, {"comment": " x" * 1001}]
)
def test_a_bad_comment_is_400_and_decides_nothing(acme, triage, body):
    """Not text: the field's error; longer than 2,000 characters once stripped: comment_invalid."""
    run = waiting_run(acme, triage)
    response = post(client(acme), f"/api/v1/runs/{run.pk}/approve", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "comment" in error.get("details", {}) or error["code"] == "comment_invalid", error
    with schema_context("acme"):
        assert Approval.objects.get(run=run).decision == "pending"


# --- cancel -----------------------------------------------------------------------------------


def test_a_developer_cancels_a_queued_run(acme, triage):
    run = make_run(acme, triage)
    response = post(client(acme, role="developer", scopes=("run",)), f"/api/v1/runs/{run.pk}/cancel")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["reason"]) == ("cancelled", "cancelled")
    assert body["finished_at"] and body["cancel_requested_at"]


def test_cancelling_a_running_run_asks_its_worker_to_stop(acme, triage):
    run = make_run(acme, triage, status=Run.Status.RUNNING, started_at=timezone.now())
    body = post(client(acme), f"/api/v1/runs/{run.pk}/cancel").json()
    assert body["status"] == "running" and body["cancel_requested_at"]


def test_cancelling_a_run_waiting_for_approval_closes_the_approval(acme, triage):
    run = waiting_run(acme, triage)
    assert post(client(acme), f"/api/v1/runs/{run.pk}/cancel").json()["status"] == "cancelled"
    approvals = client(acme).get(f"/api/v1/runs/{run.pk}/approvals").json()["approvals"]
    assert [a["decision"] for a in approvals] == ["cancelled"]


def test_cancelling_a_finished_run_is_409_and_changes_nothing(acme, triage):
    run = make_run(acme, triage, status=Run.Status.SUCCEEDED, output="done", finished_at=timezone.now())
    response = post(client(acme), f"/api/v1/runs/{run.pk}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_finished"
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "succeeded"


@pytest.mark.parametrize(("role", "scopes"), [("viewer", ("read", "run")), ("operator", ("read",))])
def test_who_may_not_start_cannot_cancel(acme, triage, role, scopes):
    run = make_run(acme, triage)
    response = post(client(acme, role=role, scopes=scopes), f"/api/v1/runs/{run.pk}/cancel")
    assert response.status_code == 403
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "queued"


# --- starting: refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(("role", "scopes"), [("viewer", ("read", "run")), ("developer", ("read", "write"))])
def test_who_may_not_start_is_refused_and_nothing_starts(acme, triage, role, scopes):
    response = post(client(acme, role=role, scopes=scopes), "/api/v1/runs", {"agent": "invoice-triage", "input": SMALL})
    assert response.status_code == 403
    with schema_context("acme"):
        assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": SMALL}, 400, "required"),
        ({"agent": "invoice-triage"}, 400, "required"),
        ({"agent": "invoice-triage", "input": 42}, 400, "not_a_string"),
        ({"agent": ["invoice-triage"], "input": SMALL}, 400, "not_a_string"),
        ({"agent": "invoice-triage", "input": ""}, 400, "blank"),
        ({"agent": "invoice-triage", "input": "   \n"}, 400, "input_invalid"),
        ({"agent": "invoice-triage", "input": "a\x00b"}, 400, "json_text_invalid"),
        ({"agent": "invoice-triage", "input": "x" * 100_001}, 400, "max_length"),
        ({"agent": "invoice-triage", "input": SMALL, "script": "respond"}, 400, "not_a_list"),
        ({"agent": "invoice-triage", "input": SMALL, "script": [{"bogus": 1}]}, 400, "script_invalid"),
        ({"agent": "invoice-triage", "input": SMALL, "script": [{"respond": 3}]}, 400, "script_invalid"),
        ({"agent": "invoice-triage", "input": SMALL, "script": ["respond"]}, 400, "script_invalid"),
        ({"agent": "invoice-triage", "input": SMALL, "script": [{"respond": "a"}] * 1001}, 400, "max_length"),
        ({"agent": "no-such-agent", "input": SMALL}, 404, "agent_not_found"),
        ({"agent": "finance", "input": SMALL}, 404, "agent_not_found"),  # a domain, not an agent
    ],
)
def test_bad_start_requests_are_refused_with_a_stable_code_and_start_nothing(acme, triage, body, status, code):
    response = post(client(acme), "/api/v1/runs", body)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    with schema_context("acme"):
        assert not Run.objects.exists()


def test_an_agent_that_is_not_deployed_cannot_run(acme, triage):
    with schema_context("acme"):
        version_publish(actor=tenant_user(acme, "owner@acme.test"), source=agent_yaml("clerk"), message="clerk")
    response = post(client(acme), "/api/v1/runs", {"agent": "clerk", "input": "Hello"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "agent_not_deployed"


def test_a_run_with_its_own_script(acme, triage):
    script = [{"respond": "Nothing to look up."}]
    response = post(client(acme), "/api/v1/runs", {"agent": "invoice-triage", "input": "Hi", "script": script})
    assert response.status_code == 201
    with schema_context("acme"):
        run = Run.objects.get(pk=response.json()["id"])
        assert run.script == script
    assert advance(run, "acme").output == "Nothing to look up."


def test_malformed_json_is_400(acme, triage):
    response = client(acme).post("/api/v1/runs", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


# --- run ids ----------------------------------------------------------------------------------

RUN_ROUTES = [
    ("GET", "/api/v1/runs/{}"),
    ("GET", "/api/v1/runs/{}/steps"),
    ("GET", "/api/v1/runs/{}/approvals"),
    ("POST", "/api/v1/runs/{}/cancel"),
    ("POST", "/api/v1/runs/{}/approve"),
    ("POST", "/api/v1/runs/{}/reject"),
]


@pytest.mark.parametrize(("method", "route"), RUN_ROUTES)
@pytest.mark.parametrize("run_id", ["not-a-uuid", "1", "0" * 40, "%E2%9C%93", "5f0c6d1e-8f3b-4c3a-9d7e-2b1a0c9e8f7d"])
def test_a_malformed_or_unknown_run_id_is_404(acme, method, route, run_id):
    response = client(acme).generic(method, route.format(run_id), "{}", content_type="application/json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


# --- isolation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "route"), RUN_ROUTES)
def test_another_tenants_run_is_404_and_untouched(acme, globex, globex_triage, method, route):
    run = waiting_run(globex, globex_triage)
    owner = client(acme, role="owner")
    response = owner.generic(method, route.format(run.pk), '{"comment": "x"}', content_type="application/json")
    assert response.status_code == 404, (method, route)
    with schema_context("globex"):
        assert Run.objects.get(pk=run.pk).status == "waiting_approval"
        assert Approval.objects.get(run=run).decision == "pending"
        assert not audit_events("acme", action__startswith="run.")
    # The same request on its own tenant's host reaches it.
    own = client(globex, role="owner").generic(method, route.format(run.pk), "{}", content_type="application/json")
    assert own.status_code == 200, own.content


def test_lists_show_only_this_tenants_runs(acme, globex, triage, globex_triage):
    mine = make_run(acme, triage)
    theirs = waiting_run(globex, globex_triage)
    admin = client(acme)
    assert [r["id"] for r in admin.get("/api/v1/runs").json()["runs"]] == [str(mine.pk)]
    assert admin.get("/api/v1/runs", {"filter": f'id = "{theirs.pk}"'}).json()["runs"] == []


def test_another_tenants_agent_cannot_be_started(acme, globex):
    deploy(globex, FINANCE, TRIAGE.replace("name: invoice-triage", "name: globex-only"))
    response = post(client(acme), "/api/v1/runs", {"agent": "globex-only", "input": SMALL})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "agent_not_found"
    with schema_context("globex"):
        assert not Run.objects.exists()


def test_a_run_page_token_of_another_tenant_is_refused(acme, globex, triage, globex_triage):
    for _ in range(2):
        make_run(globex, globex_triage)
    token = client(globex).get("/api/v1/runs", {"page_size": 1}).json()["next_page_token"]
    assert token
    response = client(acme).get("/api/v1/runs", {"page_size": 1, "page_token": token})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "page_token_mismatch"


def test_a_decision_on_a_question_asked_again_since_is_refused(acme, triage):
    """An overage whose budgets changed while the run waited is put to the approvers again at the
    same step: a decision naming the question as it was first asked (`requested_at`) is stale."""
    run = waiting_run(acme, triage)
    operator = api(acme, issue(acme, role="operator", scopes=("read", "run")))
    shown = operator.get(f"/api/v1/runs/{run.pk}/approvals").json()["approvals"][0]
    with schema_context(acme.schema_name):
        asked = Approval.objects.get(run=run)
        asked.requested_at, asked.reasons = timezone.now(), ["The project's budget changed: 90% used."]
        asked.save(update_fields=["requested_at", "reasons"])
    stale = post(operator, f"/api/v1/runs/{run.pk}/approve", {"step": 2, "requested_at": shown["requested_at"]})
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "approval_stale")
    with schema_context(acme.schema_name):
        assert Approval.objects.get(run=run).decision == Approval.Decision.PENDING
    current = operator.get(f"/api/v1/runs/{run.pk}/approvals").json()["approvals"][0]["requested_at"]
    decided = post(operator, f"/api/v1/runs/{run.pk}/approve", {"step": 2, "requested_at": current})
    assert decided.status_code == 200, decided.json()


def test_a_decision_naming_its_question_by_a_time_without_zone_reads_it_as_utc(acme, triage):
    """MCP's `requested_at` may come without its zone: read as UTC (as times are elsewhere), the
    question's own time is not taken for another."""
    from apps.runs.services import run_decide

    run = waiting_run(acme, triage)
    with schema_context(acme.schema_name):
        asked = Approval.objects.get(run=run).requested_at
        decided = run_decide(
            actor=tenant_user(acme, "operator@acme.test"),
            run=run,
            approved=True,
            step=2,
            requested_at=asked.astimezone(UTC).replace(tzinfo=None),
        )
    assert decided.status == Run.Status.QUEUED


def test_an_approval_for_a_step_that_is_no_longer_waiting_is_refused(acme, triage):
    run = waiting_run(acme, triage)
    operator = api(acme, issue(acme, role="operator", scopes=("read", "run")))
    response = post(operator, f"/api/v1/runs/{run.pk}/approve", {"step": 99})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "approval_stale")
    assert post(operator, f"/api/v1/runs/{run.pk}/approve", {"step": "x"}).status_code == 400
    too_large = post(operator, f"/api/v1/runs/{run.pk}/approve", {"step": 10**30})  # no step: 400, as MCP says
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (400, "max_value")
    with schema_context("acme"):
        assert Run.objects.get(pk=run.pk).status == "waiting_approval"


def test_a_page_token_is_bound_to_its_list(acme, triage):
    """Not only to the resource's name: one run's steps token on another run (keyset paging would
    repeat or skip rows), a domains token on the agents list — both refused."""
    one, two = make_run(acme, triage), make_run(acme, triage)
    with schema_context("acme"):
        for run in (one, two):
            Step.objects.bulk_create(
                Step(run=run, index=i, node="model", status="ok", record={}, replay={}) for i in range(1, 4)
            )
        version_publish(
            actor=tenant_user(acme, "owner@acme.test"),
            source=FINANCE.replace("name: finance", "name: hr", 1),
            message="t",
        )
    client = api(acme, issue(acme))
    token = client.get(f"/api/v1/runs/{one.pk}/steps", {"page_size": 2}).json()["next_page_token"]
    response = client.get(f"/api/v1/runs/{two.pk}/steps", {"page_size": 2, "page_token": token})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "page_token_mismatch")
    token = client.get("/api/v1/domains", {"page_size": 1}).json()["next_page_token"]
    response = client.get("/api/v1/agents", {"page_size": 1, "page_token": token})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "page_token_mismatch")
