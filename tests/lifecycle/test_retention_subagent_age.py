"""Retention judges a tree of runs by its newest run: a sub-agent's run that waited for an
approval outlives the run that started it (docs/runs.md), and the pass judged the tree by its
root's `finished_at` alone, deleting a child that finished yesterday under a 30-day `runs_days`
(docs/retention.md counts a run's age from its own `finished_at`). Found by the retention review."""

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.retention import retention_apply
from apps.runs.models import Run
from tests.lifecycle.test_retention import agents, make_run, policy_set, run_ids  # noqa: F401


def test_a_sub_agent_run_finished_inside_the_window_is_not_deleted_with_its_old_parent(acme, agents):  # noqa: F811
    now = timezone.now()
    agent = agents["acme"]
    policy_set(acme, runs_days=30)
    # The parent finished 90 days ago, while its child waited for an approval; the child was
    # decided and finished yesterday.
    parent = make_run(acme, agent, finished_at=now - timedelta(days=90), steps=1)
    child = make_run(acme, agent, finished_at=now - timedelta(days=1), parent=parent, step=1, steps=1)

    preview = retention_apply(tenant=acme, now=now, dry_run=True)["runs"]
    counts = retention_apply(tenant=acme, now=now)

    with schema_context(acme.schema_name):
        assert Run.objects.filter(pk=child.pk).exists(), (
            f"a run that finished a day ago went under runs_days=30 (preview {preview}, pass {counts['runs']})"
        )
    assert {str(parent.pk), str(child.pk)} <= run_ids(acme)
