"""Quotas: every model call is checked against the month's budgets before it is made. A spent
budget stops the run with `quota_exceeded`, or waits for a human to approve the overage; the
plan's cap cannot be approved past; 80% and 100% are announced once each in the audit trail."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from apps.billing.quotas import budgets_cache_clear, budgets_of
from apps.billing.services import budget_set, price_set
from apps.runs.models import Approval, Run, Step
from apps.runs.services import run_decide
from apps.runs.usage import usage_record
from apps.tenants.limits import limits_cache_clear
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_limits_set
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for, tenant_user, usage_rows
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy
from tests.runs.test_engine import start


def spend(tenant: Tenant, tokens: int, *, project: str = "accounts-payable", model: str = "scripted-1") -> None:
    """A model call of `tokens` (input + output) already made this month."""
    with schema_context(tenant.schema_name):
        usage_record(tenant_id=tenant.pk, project=project, agent="other", run_id=None, step=None,
                     provider="scripted", model=model, input_tokens=tokens - 1, output_tokens=1)  # fmt: skip


def budget(tenant: Tenant, project: str = "", **amounts) -> None:
    with schema_context(tenant.schema_name):
        budget_set(actor=tenant_user(tenant, f"owner@{tenant.slug}.test"), tenant_id=tenant.pk, project=project,
                   **amounts)  # fmt: skip


def model_steps(run: Run, schema: str) -> int:
    with schema_context(schema):
        return Step.objects.filter(run=run, node="model").count()


def test_a_spent_workspace_budget_stops_the_run_before_its_model_call(acme, globex, triage):
    budget(acme, monthly_tokens=1000)
    spend(acme, 1000)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded"), run.message
    assert "1,000 tokens" in run.message and "the workspace" in run.message
    assert model_steps(run, "acme") == 0 and not usage_rows(acme, run_id=run.pk)
    # Isolation: acme's spending and budget are nothing to globex, with the same project and agent.
    budget(globex, monthly_tokens=1000)
    other = advance(start(globex, deploy(globex, FINANCE, TRIAGE), "Triage invoice INV-1001."), "globex")
    assert other.status == "succeeded", other.message


def test_a_run_that_spends_its_budget_stops_before_its_next_model_call(acme, triage):
    budget(acme, "accounts-payable", monthly_tokens=1)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded"), run.message
    with schema_context("acme"):  # the first call spent the budget; the tool ran; no second call
        assert list(Step.objects.filter(run=run).values_list("node", flat=True)) == ["model", "tool"]
    assert [u.step for u in usage_rows(acme, run_id=run.pk)] == [1]


def test_a_project_budget_binds_its_own_project_only(acme, triage):
    budget(acme, "elsewhere", monthly_tokens=10)
    spend(acme, 50, project="elsewhere")
    assert advance(start(acme, triage, "Triage invoice INV-1001."), "acme").status == "succeeded"
    budget(acme, "accounts-payable", monthly_cost_usd="0.01")
    with schema_context("acme"):
        price_set(actor="ops", provider="scripted", model="scripted-1", input_per_mtok="10000",
                  output_per_mtok="10000", cached_per_mtok="0")  # fmt: skip
    spend(acme, 10)  # 10 tokens at 10,000 USD per million: 0.10 USD, over the 0.01 budget
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded")
    assert "project 'accounts-payable'" in run.message and "0.01 USD" in run.message


def test_an_approvable_budget_waits_for_an_overage_approval(acme, triage):
    budget(acme, monthly_tokens=100, on_exhausted="approve")
    spend(acme, 100)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval" and model_steps(run, "acme") == 0
    page = client_for(acme, "admin@acme.test").get(f"/runs/{run.pk}/").content.decode()
    assert "a model call past the workspace&#x27;s budget" in page or "a model call past the workspace's budget" in page
    admin = tenant_user(acme, "admin@acme.test")
    with schema_context("acme"):
        approval = Approval.objects.get(run=run)
        assert (approval.step, approval.tool) == (1, "(overage)")
        assert "100 tokens" in approval.reasons[0]
        run = run_decide(actor=admin, run=run, approved=True, comment="Quarter end.")
    run = advance(run, "acme")
    # Approved once, the run goes on past that budget for its later model calls this month too.
    assert run.status == "succeeded", run.message
    assert model_steps(run, "acme") == 2

    refused = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    with schema_context("acme"):
        refused = run_decide(actor=admin, run=refused, approved=False, comment="Not this month.")
    refused = advance(refused, "acme")
    assert (refused.status, refused.reason) == ("failed", "quota_exceeded")
    assert "refused the overage: Not this month." in refused.message
    assert model_steps(refused, "acme") == 0


def test_the_plans_cap_cannot_be_approved_past(acme, triage):
    Tenant.objects.filter(pk=acme.pk).update(monthly_tokens_override=500)
    limits_cache_clear()
    try:
        budget(acme, monthly_tokens=10**9, on_exhausted="approve")
        spend(acme, 500)
        run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
        assert (run.status, run.reason) == ("failed", "quota_exceeded")
        assert "plan's monthly limit of 500 tokens" in run.message
    finally:
        limits_cache_clear()


def test_80_and_100_percent_are_announced_once_each(acme):
    budget(acme, monthly_tokens=1000)
    spend(acme, 700)
    assert not audit_events("acme", action="quota.threshold")
    spend(acme, 100)  # 800: 80%
    spend(acme, 100)  # 900
    events = audit_events("acme", action="quota.threshold")
    assert [(e.data["percent"], e.data["used"], e.outcome) for e in events] == [(80, "800", "success")]
    spend(acme, 150)  # 1050: 100%
    spend(acme, 10)
    events = audit_events("acme", action="quota.threshold")
    assert [(e.data["percent"], e.data["measure"], e.data["project"]) for e in events] == [
        (80, "tokens", ""),
        (100, "tokens", ""),
    ]
    assert events[1].outcome == "failure" and "1,050 tokens" in events[1].data["message"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"monthly_tokens": -1}, "budget_invalid"),
        ({"monthly_tokens": 10**14}, "budget_invalid"),
        ({"monthly_tokens": "12.5"}, "budget_invalid"),
        ({"monthly_tokens": True}, "budget_invalid"),
        ({"monthly_cost_usd": "-0.01"}, "budget_invalid"),
        ({"monthly_cost_usd": "NaN"}, "budget_invalid"),
        ({"monthly_cost_usd": "1e12"}, "budget_invalid"),
        ({"monthly_cost_usd": "ten"}, "budget_invalid"),
        ({"monthly_tokens": 1, "project": "Not A Project"}, "project_invalid"),
        ({"monthly_tokens": 1, "on_exhausted": "ignore"}, "on_exhausted_invalid"),
    ],
)
def test_bad_budgets_are_refused_and_change_nothing(acme, fields, code):
    fields = {"project": "", **fields}
    with pytest.raises(ValidationError) as refused:
        budget(acme, **fields)
    assert code in {e.code for errors in refused.value.error_dict.values() for e in errors}
    budgets_cache_clear()

    assert budgets_of(acme.pk) == {}


def test_a_budget_is_set_changed_and_removed_with_an_audit_trail(acme):
    budget(acme, "accounts-payable", monthly_tokens="1_000_000", monthly_cost_usd="250")
    budget(acme, "accounts-payable", monthly_cost_usd=Decimal("300"), on_exhausted="approve")
    budget(acme, "accounts-payable", monthly_cost_usd="300.00", on_exhausted="approve")  # as it is: no change

    current = budgets_of(acme.pk)["accounts-payable"]
    assert (current.monthly_tokens, current.monthly_cost_usd, current.on_exhausted) == (None, Decimal("300"), "approve")
    budget(acme, "accounts-payable")
    assert budgets_of(acme.pk) == {}
    assert [e.action for e in audit_events("acme", action__startswith="budget.")] == [
        "budget.set",
        "budget.set",
        "budget.delete",
    ]


def test_the_plan_and_a_workspace_budget_announce_their_marks_each(acme):
    """Both count the workspace's tokens (the month's "" row), yet each is a cap of its own: the
    plan's 80% and 100% are announced after the budget's were."""

    def spend(tokens: int) -> None:
        with schema_context(acme.schema_name):
            usage_record(tenant_id=acme.pk, project="accounts-payable", agent="a", run_id=None, step=None,
                         provider="scripted", model="scripted-1", input_tokens=tokens - 1, output_tokens=1)  # fmt: skip

    def marks() -> list[tuple[str, int]]:
        return [(e.data["source"], e.data["percent"]) for e in audit_events("acme", action="quota.threshold")]

    tenant_limits_set(tenant=acme, overrides={"monthly_tokens": 10_000}, actor="operator:1")
    try:
        with schema_context(acme.schema_name):
            budget_set(actor=tenant_user(acme, "owner@acme.test"), tenant_id=acme.pk, project="",
                       monthly_tokens=1000, on_exhausted="approve")  # fmt: skip
        spend(850)
        spend(200)  # 1,050: the budget's 80% and 100%
        assert marks() == [("budget", 80), ("budget", 100)]
        spend(7_500)  # 8,550: the plan's 80%
        spend(2_000)  # 10,550: the plan's 100%
        assert marks() == [("budget", 80), ("budget", 100), ("plan", 80), ("plan", 100)]
    finally:
        limits_cache_clear()


def _marks(tenant) -> list[tuple[int, str]]:
    return [(e.data["percent"], e.data["limit"]) for e in audit_events(tenant.schema_name, action="quota.threshold")]


def test_a_call_that_jumps_past_80_to_100_percent_announces_both_marks(acme):
    """One model call takes the month from 50% to 105% of the budget: 80% was reached as well as
    100%, yet only the 100% event is written; the 80% one never is."""
    budget(acme, monthly_tokens=1000)
    spend(acme, 500)
    spend(acme, 550)  # 1,050: past 80% and 100% at once
    assert _marks(acme) == [(80, "1000"), (100, "1000")]


def test_a_raised_budget_announces_its_own_marks(acme):
    """The budget is announced spent (100%), the admin raises it tenfold; when the new budget is
    in turn 80% and 100% spent, nothing is written: the marks already claimed for the month's
    row stand for any budget, so the admin is never told the raised budget ran out."""
    budget(acme, monthly_tokens=1000)
    spend(acme, 850)
    spend(acme, 200)  # 1,050 of 1,000: 80% and 100% announced
    assert _marks(acme) == [(80, "1000"), (100, "1000")]
    budget(acme, monthly_tokens=10_000)
    spend(acme, 7_000)  # 8,050 of 10,000: 80%
    spend(acme, 2_000)  # 10,050 of 10,000: 100%
    assert _marks(acme)[2:] == [(80, "10000"), (100, "10000")]


def test_a_cap_lowered_below_this_months_use_announces_its_marks_when_it_stops_a_run(acme, triage):
    """No call crosses a cap set below what the month has spent (none is made): its 80% and 100%
    are announced when it first stops one, once, so an alert on `quota.threshold` fires."""
    budget(acme, monthly_tokens=10_000)
    spend(acme, 5_000)
    assert not audit_events("acme", action="quota.threshold")
    budget(acme, monthly_tokens=1_000)  # a new cap, 500% spent already
    for _ in range(2):
        run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
        assert (run.status, run.reason) == ("failed", "quota_exceeded"), run.message
    marks = [(e.data["percent"], e.data["limit"]) for e in audit_events("acme", action="quota.threshold")]
    assert marks == [(80, "1000"), (100, "1000")]


def test_a_zero_budget_is_shown_spent_and_announced_when_it_stops_a_run(acme, triage):
    """A cap of 0 stops every call before anything is spent: listed at 100%, not 0%, and its marks
    are announced (on a month row made for them: nothing was spent)."""
    budget(acme, monthly_cost_usd="0.00")
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert (run.status, run.reason) == ("failed", "quota_exceeded"), run.message
    caps = api(acme, issue(acme, role="viewer", scopes=["read"])).get("/api/v1/budgets").json()["caps"]
    cost = next(cap for cap in caps if cap["measure"] == "cost" and cap["source"] == "budget")
    assert cost["percent"] == 100
    assert 'value="0.0"' not in client_for(acme, "viewer@acme.test").get("/usage/").content.decode()
    marks = [(e.data["percent"], e.data["measure"]) for e in audit_events("acme", action="quota.threshold")]
    assert marks == [(80, "cost"), (100, "cost")]


def test_only_who_sets_budgets_approves_an_overage_and_anyone_who_decides_runs_may_refuse_it(acme, triage):
    """An operator approves tool calls but does not set budgets: letting a run spend past one is
    a budget decision (an admin's or an owner's, with a token that has the admin scope). Refused,
    it is one `access.denied` event and the run still waits; turning the overage down is allowed."""
    budget(acme, monthly_tokens=100, on_exhausted="approve")
    spend(acme, 100)
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    assert run.status == "waiting_approval"
    denied_before = len(audit_events("acme", action="access.denied"))
    refusals = [
        api(acme, issue(acme, role="operator")).post(f"/api/v1/runs/{run.pk}/approve", {}, "application/json"),
        api(acme, issue(acme, scopes=("read", "run"))).post(f"/api/v1/runs/{run.pk}/approve", {}, "application/json"),
    ]
    for response in refusals:
        assert response.status_code == 403, response.content
        assert "overage" in response.json()["error"]["message"]
    page = client_for(acme, "operator@acme.test").post(f"/runs/{run.pk}/decide/", {"decision": "approve", "step": 1})
    assert page.status_code == 403
    assert len(audit_events("acme", action="access.denied")) == denied_before + 3
    with schema_context("acme"):
        assert Approval.objects.get(run=run).decision == Approval.Decision.PENDING
        assert Run.objects.get(pk=run.pk).status == "waiting_approval"

    response = api(acme, issue(acme, role="operator")).post(f"/api/v1/runs/{run.pk}/reject", {}, "application/json")
    assert response.status_code == 200, response.content
    assert (advance(run, "acme").reason) == "quota_exceeded"


def test_an_approved_overage_covers_the_budgets_reached_then_not_one_the_run_reaches_later(acme, triage):
    """Approving the workspace's budget is no approval of the project's: the run asks again when
    its own calls spend that one (each approval lists what it lets the run pass)."""
    budget(acme, monthly_tokens=100, on_exhausted="approve")
    spend(acme, 100)  # the workspace's budget is reached; the project's (101) not yet
    budget(acme, "accounts-payable", monthly_tokens=101, on_exhausted="approve")
    admin = tenant_user(acme, "admin@acme.test")
    run = advance(start(acme, triage, "Triage invoice INV-1001."), "acme")
    with schema_context("acme"):
        first = Approval.objects.get(run=run)
        assert (run.status, first.step) == ("waiting_approval", 1)
        assert first.reasons == [
            "This month's usage (100 tokens) has reached the workspace's monthly budget of 100 tokens."
        ]
        run = run_decide(actor=admin, run=run, approved=True, comment="Workspace only.")
    run = advance(run, "acme")
    with schema_context("acme"):
        second = Approval.objects.filter(run=run).exclude(pk=first.pk).get()
    assert (run.status, second.step, second.tool) == ("waiting_approval", 3, "(overage)"), run.message
    assert len(second.reasons) == 1 and "project 'accounts-payable'" in second.reasons[0]
    assert model_steps(run, "acme") == 1
    with schema_context("acme"):
        run = run_decide(actor=admin, run=run, approved=True, comment="The project too.")
    run = advance(run, "acme")
    assert run.status == "succeeded", run.message
    assert model_steps(run, "acme") == 2


def test_an_approved_overage_is_for_its_month_and_the_budget_as_it_was(acme, monkeypatch):
    """An approval names each cap with its month and amount: in the next month, or once the budget
    is changed, the same budget reached again is not covered. Runs approved before approvals named
    their caps (True in their state) still pass every budget, never the plan's cap."""
    from datetime import date

    from apps.billing import quotas

    budget(acme, monthly_tokens=0, on_exhausted="approve")  # reached in any month
    reached = quotas.quota_check(tenant_id=acme.pk, project="accounts-payable")
    assert [use.approvable for use in reached] == [True]
    key = reached[0].key
    assert quotas.quota_check(tenant_id=acme.pk, project="accounts-payable", approved=[key]) == []

    this = quotas.month_of()
    following = date(this.year + this.month // 12, this.month % 12 + 1, 1)
    monkeypatch.setattr(quotas, "month_of", lambda moment=None: following)
    later = quotas.quota_check(tenant_id=acme.pk, project="accounts-payable", approved=[key])
    assert [use.key for use in later] == [key.replace(f"{this:%Y-%m}", f"{following:%Y-%m}")]
    monkeypatch.undo()

    budget(acme, monthly_tokens=0, monthly_cost_usd="0.00", on_exhausted="approve")
    changed = quotas.quota_check(tenant_id=acme.pk, project="accounts-payable", approved=[key])
    assert [use.cap.measure for use in changed] == ["cost"]  # the tokens cap as approved, not the new one

    assert quotas.quota_check(tenant_id=acme.pk, project="accounts-payable", approved=True) == []
    Tenant.objects.filter(pk=acme.pk).update(monthly_tokens_override=0)
    limits_cache_clear()
    try:
        plan = quotas.quota_check(tenant_id=acme.pk, project="accounts-payable", approved=True)
        assert [(use.cap.source, use.approvable) for use in plan] == [("plan", False)]
    finally:
        limits_cache_clear()
