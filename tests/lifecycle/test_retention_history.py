"""Retention of runs (docs/retention.md): once `runs_days` has passed, a finished run goes "with
its steps, approvals, sub-agent runs and LangGraph checkpoints"; a workspace keeps each kind of
its data "as long as its retention policy says, and no longer"."""

from datetime import timedelta

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.retention import retention_apply, retention_policy_set
from apps.runs.models import Approval, Run
from apps.runs.services import run_decide, run_start
from tests.conftest import tenant_user
from tests.runs.conftest import FINANCE, TRIAGE, advance, deploy

COMMENT = "ok - call Dana on +44 7700 900123 about the refund"


def test_a_run_gone_by_retention_leaves_no_model_history_of_its_approvals(acme):
    """The approval's model history (django-auditlog entries holding its approver and comment
    verbatim) goes with it: the pass deletes with SQL, which fires no signals, and the history
    stayed for ever, the comment and the approver outliving `runs_days`."""
    agent = deploy(acme, FINANCE, TRIAGE)
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context(acme.schema_name):
        run = run_start(actor=owner, agent=agent, input="Look up the 25,000 EUR invoice.")
    run = advance(run, acme.schema_name)
    assert run.status == "waiting_approval"
    with schema_context(acme.schema_name):
        run_decide(actor=owner, run=run, approved=True, comment=COMMENT)
    run = advance(run, acme.schema_name)
    assert run.status == "succeeded", run.message
    with schema_context(acme.schema_name):
        approval_ids = [str(pk) for pk in Approval.objects.filter(run=run).values_list("pk", flat=True)]
        assert approval_ids
        Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(days=3))
        retention_policy_set(actor="test", runs_days=1)

    counts = retention_apply(tenant=acme)

    assert counts["runs"] == 1
    with schema_context(acme.schema_name):
        assert not Run.objects.filter(pk=run.pk).exists()
        assert not Approval.objects.filter(pk__in=approval_ids).exists()
        kind = ContentType.objects.get_for_model(Approval)
        left = LogEntry.objects.filter(content_type=kind, object_pk__in=approval_ids)
        holding = [entry.changes for entry in left if COMMENT in str(entry.changes)]
    assert holding == [], f"the deleted approval's comment is still stored in its model history: {holding}"
