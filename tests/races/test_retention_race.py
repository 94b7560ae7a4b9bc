"""Retention applied twice at once (the nightly beat job and an operator's `apply_retention`, or
two beat deliveries): one pass at a time, the other refused as busy, and each run reported once —
the `retention.applied` audit events are the workspace's record of what retention erased."""

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.retention import RetentionSaver, retention_apply
from apps.runs.models import Run
from tests.conftest import audit_events
from tests.lifecycle.test_retention import make_run, policy_set
from tests.races.conftest import Rendezvous, run_together
from tests.runs.conftest import FINANCE, TRIAGE, deploy


def test_two_retention_passes_at_once_report_each_deleted_run_once(fresh_tenant, django_db_blocker, monkeypatch):
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        agent = deploy(tenant, FINANCE, TRIAGE)
        old = timezone.now() - timedelta(days=90)
        for _ in range(3):
            make_run(tenant, agent, finished_at=old, steps=2)
        policy_set(tenant, runs_days=30)

        meet = Rendezvous()
        thread_delete = RetentionSaver.thread_delete

        def thread_delete_meeting(self, *args, **kwargs):  # both passes have chosen their runs
            meet.wait()
            return thread_delete(self, *args, **kwargs)

        monkeypatch.setattr(RetentionSaver, "thread_delete", thread_delete_meeting)
        results = run_together(lambda: retention_apply(tenant=tenant), lambda: retention_apply(tenant=tenant))
        with schema_context(tenant.schema_name):
            left = Run.objects.count()
        events = audit_events(tenant.schema_name, action="retention.applied")
    # One pass deletes; the other is refused at once as busy (it would find nothing left).
    assert sorted(type(exc).__name__ for _, exc in results) == ["NoneType", "ServiceError"], results
    assert [exc.code for _, exc in results if exc is not None] == ["retention_busy"]
    assert left == 0
    reported = sum(counts["runs"] for counts, exc in results if exc is None)
    recorded = sum(event.data["counts"]["runs"] for event in events)
    assert (reported, recorded) == (3, 3), (
        f"3 runs were deleted; the two passes report {reported} and their audit events record {recorded}"
    )
