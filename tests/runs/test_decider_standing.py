"""A decision on a run's tool call is taken by whoever may decide it as they stand when it is
recorded (`actor_now`, as publish, deploy, member changes and exports are), not as their request
read them when it began: a member removed (their tokens revoked with them) or demoted while their
decision waited for the run's row approved the call, and the call was made (found by the
approvals review)."""

import json
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, connections, transaction
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from apps.accounts.services import member_remove
from apps.runs.models import Approval, Run
from apps.runs.services import run_create, run_decide
from apps.tokens.services import token_issue
from tests.api.conftest import api
from tests.conftest import PASSWORD, audit_events, tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy

LARGE = "Look up the 25,000 EUR invoice."  # invoice-triage's test whose call a DIS rule sends to approval


def _waiting_run(tenant, agent) -> Run:
    with schema_context(tenant.schema_name):
        run = run_create(agent=agent, input=LARGE, created_by="test")
    run = advance(run, tenant.schema_name)
    assert run.status == Run.Status.WAITING_APPROVAL
    return run


def test_a_member_demoted_while_deciding_does_not_approve_the_call(acme, triage):
    """Sequentially, as tests/accounts/test_actor_now.py does: the request's User still says
    operator, the database says viewer (committed by another request). The approval must be
    refused (viewers may not decide runs) and the run must keep waiting."""
    run = _waiting_run(acme, triage)
    with schema_context("acme"):
        operator = User.objects.create_user("op@acme.test", PASSWORD, role=Role.OPERATOR)
        stale = tenant_user(acme, operator.email)  # as the decision's request authenticated it
        User.objects.filter(pk=operator.pk).update(role=Role.VIEWER)  # demoted meanwhile
        with pytest.raises(PermissionDenied):
            run_decide(actor=stale, run=run, approved=True, comment="ok", step=2)
        approval = Approval.objects.get(run=run)
        assert approval.decision == Approval.Decision.PENDING, (
            f"a viewer (demoted before the decision was recorded) approved the call as {approval.approver!r}"
        )
        assert Run.objects.get(pk=run.pk).status == Run.Status.WAITING_APPROVAL


def test_a_token_revoked_while_its_decision_waited_approves_nothing(fresh_tenant, django_db_blocker):
    """Over the real API: admin M's operator token asks to approve while another transaction holds the
    run's row (a worker recording the wait, a colleague's cancel or decision); meanwhile an owner
    removes M, which revokes every token M issued (docs/roles.md). Once the row is free the
    approval must be refused — it is recorded instead, by a revoked token, and the call is made."""
    tenant = fresh_tenant
    slug = tenant.slug
    with django_db_blocker.unblock():
        agent = deploy(tenant, FINANCE, TRIAGE)
        run = _waiting_run(tenant, agent)
        with schema_context(tenant.schema_name):
            owner = tenant_user(tenant, f"owner@{slug}.test")
            member = User.objects.create_user(f"adm@{slug}.test", PASSWORD, role=Role.ADMIN)
            plaintext = token_issue(actor=member, name="m", role=Role.OPERATOR, scopes=["read", "run"]).plaintext
        client = api(tenant, plaintext)
        assert client.get(f"/api/v1/runs/{run.pk}").status_code == 200

        held, release = threading.Event(), threading.Event()
        answer = {}

        def hold_row():
            try:
                with schema_context(tenant.schema_name), transaction.atomic():
                    Run.objects.select_for_update().get(pk=run.pk)
                    held.set()
                    release.wait(15)
            finally:
                connections.close_all()

        def decide():
            try:
                answer["response"] = client.post(
                    f"/api/v1/runs/{run.pk}/approve",
                    json.dumps({"comment": "looks fine", "step": 2}),
                    content_type="application/json",
                )
            finally:
                connections.close_all()

        holder = threading.Thread(target=hold_row)
        holder.start()
        assert held.wait(10)
        decider = threading.Thread(target=decide)
        decider.start()
        try:
            # The decision has authenticated and passed its permission check; it waits for the row.
            deadline = time.monotonic() + 10
            waiting = False
            while time.monotonic() < deadline and not waiting:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                        ["%runs_run%FOR UPDATE%"],
                    )
                    waiting = cursor.fetchone()[0] > 0
                time.sleep(0.02)
            assert waiting, "the decision never reached the run's row"
            with schema_context(tenant.schema_name):
                member_remove(actor=owner, member=User.objects.get(pk=member.pk))  # revokes M's token
        finally:
            release.set()
            holder.join(15)
            decider.join(15)

        assert client.get(f"/api/v1/runs/{run.pk}").status_code == 401  # the token is revoked indeed
        with schema_context(tenant.schema_name):
            approval = Approval.objects.get(run=run)
            decided = (approval.decision, approval.approver)
            events = audit_events(tenant.schema_name, action="run.approve", data={"run": str(run.pk)})
        status = answer["response"].status_code
        assert status == 403, answer["response"].content
        assert approval.decision == Approval.Decision.PENDING and not events, (
            f"answered {status}: the removed member's revoked token decided {decided}, events {len(events)}"
        )
