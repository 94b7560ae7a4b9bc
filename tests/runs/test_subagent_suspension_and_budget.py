"""A sub-agent's run and its parent: a suspension reaching the child leaves both waiting, and what
the child spends counts for the parent's next model call."""

from django_tenants.utils import schema_context

import apps.runs.engine as engine
from apps.runs.models import Run, Step
from apps.tenants.services import tenant_resume, tenant_suspend
from tests.runs.conftest import advance, delegating_run


def test_a_tenant_suspended_while_a_sub_agent_runs_does_not_fail_the_parents_step(acme, monkeypatch):
    """A workspace suspended while a sub-agent runs: the child goes back in the queue, and so does
    its parent, with no failed step recorded (docs/runs.md: suspension stops a run before its next
    step and leaves it as it is; resumed, it goes on and gets the child's real answer)."""
    monkeypatch.setattr(engine, "TENANT_CHECK_SECONDS", 0.0)  # every step looks, as after 5 s
    run = delegating_run(acme)

    original = engine.run_advance

    def child_advance(run_id):
        # The tenant is suspended while the child runs (after the parent's own check).
        with schema_context("public"):  # restores the tenant's schema on exit
            tenant_suspend(tenant=acme)
        return original(run_id)

    monkeypatch.setattr(engine, "run_advance", child_advance)
    with schema_context("acme"):
        original(run.pk)
        child = Run.objects.get(parent=run)
        tool = Step.objects.filter(run=run, node="tool").first()
        parent_status = Run.objects.get(pk=run.pk).status
    assert child.status == "queued"  # the child was left to go on after resumption
    assert tool is None or tool.error != "subagent_failed", (
        f"the parent's step recorded the suspended child as failed: {tool.summary!r}"
    )
    assert parent_status == "queued"

    monkeypatch.setattr(engine, "run_advance", original)
    tenant_resume(tenant=acme)
    run = advance(run, "acme")
    with schema_context("acme"):
        tool = Step.objects.get(run=run, node="tool")
    assert tool.status == "ok" and "accounts payable" in tool.summary


HELPER_ANSWERS = (
    "  tests:\n    - name: answers\n      input: What is AP?\n      script:\n"
    "        - respond: AP is accounts payable.\n"
)


def test_a_sub_agents_usage_counts_against_the_parents_next_model_call(acme, monkeypatch):
    """The parent's next model call is checked against the month's usage read afresh after its
    sub-agent ran, so what the child spent counts: a spent budget stops the parent before that
    call (`quota_exceeded`)."""
    from apps.billing.models import Budget, UsageMonth
    from apps.billing.quotas import budgets_cache_clear, month_of
    from apps.billing.rls import usage_scope

    run = delegating_run(acme, helper_limits=HELPER_ANSWERS)

    original = engine.run_advance

    def child_advance(run_id):
        # Just before the child runs: a workspace budget one token above what is spent so far
        # (the parent's first model call), so the child's one call is admitted and spends it.
        with usage_scope(acme.pk):
            used = UsageMonth.objects.get(tenant_id=acme.pk, month=month_of(), project="").tokens
            Budget.objects.create(tenant_id=acme.pk, project="", monthly_tokens=used + 1, updated_by="t")
        budgets_cache_clear()
        return original(run_id)

    monkeypatch.setattr(engine, "run_advance", child_advance)
    try:
        with schema_context("acme"):
            original(run.pk)
            run = Run.objects.get(pk=run.pk)
            child = Run.objects.get(parent=run)
    finally:
        budgets_cache_clear()
    assert child.status == "succeeded" and child.output == "AP is accounts payable."
    with usage_scope(acme.pk):
        month = UsageMonth.objects.get(tenant_id=acme.pk, month=month_of(), project="")
        budget = Budget.objects.get(tenant_id=acme.pk, project="")
    assert (run.status, run.reason) == ("failed", "quota_exceeded"), (
        f"parent ran a model call past the spent budget: {run.status}/{run.reason}, "
        f"{month.tokens} tokens used of a {budget.monthly_tokens}-token budget, {run.step_count} steps"
    )
