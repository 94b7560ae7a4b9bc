"""A member erased (a data-subject request) while a run's state names them: a tool call waiting
for approval that would send their address. The erasure rewrote the pending approval (what the
approver is shown) to the pseudonym but left the run's checkpoint, from which the call is made:
approved, it sent the address the approver was not shown, and wrote it back into the workspace.
Now such runs are cancelled by the erasure, and their checkpoints deleted once they stop."""

import ipaddress

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from apps.accounts.permissions import Role
from apps.audit.models import AuditEvent
from apps.audit.scope import rls_scope
from apps.lifecycle.erasure import erased_runs_forget, member_erase
from apps.runs.checkpoints import checkpointer
from apps.runs.models import Approval, Run
from apps.runs.services import run_decide, run_finish, run_start
from foundry.errors import ServiceError
from tests.conftest import PASSWORD, tenant_user
from tests.runs.conftest import FINANCE, Ledger, advance, agent_yaml, deploy, http_tool

GATED = "  approvals:\n    tools: [ledger]\n"


def waiting_run(tenant, ledger) -> Run:
    """A run of `tenant` waiting for approval of a call naming pat@acme.test."""
    with schema_context(tenant.schema_name):
        get_user_model().objects.create_user("pat@acme.test", PASSWORD, role=Role.DEVELOPER)
    agent = deploy(tenant, FINANCE, agent_yaml(tools=http_tool(ledger.port), approvals=GATED))
    script = [
        {"tool_call": {"tool": "ledger", "arguments": {"id": "A1", "notify": "pat@acme.test"}}},
        {"respond": "Booked."},
    ]
    owner = tenant_user(tenant, f"owner@{tenant.slug}.test")
    with schema_context(tenant.schema_name):
        run = run_start(actor=owner, agent=agent, input="Tell Pat.", script=script)
    run = advance(run, tenant.schema_name)
    assert run.status == Run.Status.WAITING_APPROVAL, (run.status, run.reason, run.message)
    return run


@pytest.fixture
def ledger(settings):
    """The service the call books in, on loopback (which agents may reach here: an operator setting)."""
    settings.FOUNDRY_HTTP_TOOL_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    service = Ledger()
    yield service
    service.close()


@pytest.fixture
def waiting(acme, ledger):
    return waiting_run(acme, ledger)


def test_an_erasure_cancels_a_run_whose_waiting_call_names_the_person_and_deletes_its_state(acme, ledger, waiting):
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        erased = member_erase(actor=owner, email="pat@acme.test")
        run = Run.objects.get(pk=waiting.pk)
        approval = Approval.objects.get(run=run)
        assert erased.runs_cancelled == [str(run.pk)]
        assert (run.status, run.reason) == (Run.Status.CANCELLED, "cancelled")
        assert "erased" in run.message and "pat@" not in run.message
        assert approval.decision == "cancelled" and "pat@acme.test" not in str(approval.arguments)
        assert checkpointer("acme").threads_holding(b"pat@acme.test") == []
        assert list(checkpointer("acme").list({"configurable": {"thread_id": str(run.pk)}})) == []
        # Nobody can approve the call any more: it is not made.
        with pytest.raises(ServiceError) as refused:
            run_decide(actor=owner, run=run, approved=True, step=approval.step, requested_at=approval.requested_at)
        assert refused.value.status == 409
    assert advance(run, "acme").status == Run.Status.CANCELLED
    assert ledger.booked == []
    with rls_scope(acme.pk):
        event = AuditEvent.objects.filter(tenant_id=acme.pk, action="member.erased").latest("seq")
    assert event.data["runs_cancelled"] == [str(run.pk)]


def test_a_run_its_worker_is_running_is_told_to_stop_and_forgotten_once_it_has(acme, waiting):
    """A worker holds the run (running): the erasure marks it cancelled for the worker, which stops
    before its next step; its checkpoints stay while it runs and go once it has stopped."""
    with schema_context("acme"):
        Run.objects.filter(pk=waiting.pk).update(status=Run.Status.RUNNING)  # as a worker claims it
        erased = member_erase(actor=tenant_user(acme, "owner@acme.test"), email="pat@acme.test")
        run = Run.objects.get(pk=waiting.pk)
        assert erased.runs_cancelled == [str(run.pk)]
        assert run.status == Run.Status.RUNNING and run.cancel_requested_at is not None
        assert erased_runs_forget([str(run.pk)]) == [str(run.pk)]
        assert checkpointer("acme").threads_holding(b"pat@acme.test") == [str(run.pk)]
        run_finish(run, Run.Status.CANCELLED, reason="cancelled", message="The run was cancelled.")
        assert erased_runs_forget([str(run.pk)]) == []
        assert checkpointer("acme").threads_holding(b"pat@acme.test") == []


def test_an_erasure_leaves_another_workspaces_runs_naming_the_same_address_alone(acme, globex, ledger, waiting):
    """The same address in globex's waiting run: globex's state, not acme's erasure's to touch."""
    theirs = waiting_run(globex, ledger)
    with schema_context("acme"):
        member_erase(actor=tenant_user(acme, "owner@acme.test"), email="pat@acme.test")
        assert Run.objects.get(pk=waiting.pk).status == Run.Status.CANCELLED
    with schema_context("globex"):
        assert Run.objects.get(pk=theirs.pk).status == Run.Status.WAITING_APPROVAL
        assert checkpointer("globex").threads_holding(b"pat@acme.test") == [str(theirs.pk)]
        assert "pat@acme.test" in str(Approval.objects.get(run=theirs).arguments)
