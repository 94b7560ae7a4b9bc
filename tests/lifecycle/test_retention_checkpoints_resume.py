"""The checkpoints kind of a retention pass starts where the last completed pass stopped
(`RetentionPolicy.checkpoints_pruned_before`): a finished run's checkpoints never change again, so
runs cut once are not walked again. Before, every nightly pass walked every run the workspace ever
finished before the period (the default keeps runs for ever), batch by batch, with a checkpoint
query per batch: work that grew with the workspace's whole history, every night."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.models import RetentionPolicy
from apps.lifecycle.retention import retention_apply
from tests.lifecycle.test_retention import SECOND, agents, checkpoint_rows, make_run, policy_set, real_run  # noqa: F401

DAY = timedelta(days=1)


def _pruned_before(tenant):
    with schema_context(tenant.schema_name):
        return RetentionPolicy.objects.values_list("checkpoints_pruned_before", flat=True).get(pk=1)


def _run_pages(tenant, **pass_options) -> tuple[dict, int]:
    """A pass's counts, and how many pages of finished runs it read."""
    with CaptureQueriesContext(connection) as queries:
        counts = retention_apply(tenant=tenant, **pass_options)
    pages = [q["sql"] for q in queries if 'FROM "runs_run"' in q["sql"] and '"runs_run"."finished_at" <' in q["sql"]]
    return counts, len(pages)


def test_a_pass_walks_only_the_runs_finished_since_the_last_completed_pass(acme, agents):  # noqa: F811
    now = timezone.now()
    policy_set(acme, checkpoints_days=30)
    for age in range(40, 70):  # history: 30 runs finished long ago
        make_run(acme, agents["acme"], finished_at=now - age * DAY)
    tonight = real_run(acme, agents["acme"], finished_at=now - 30 * DAY - SECOND)
    tomorrow = real_run(acme, agents["acme"], finished_at=now - 30 * DAY + SECOND)
    history = checkpoint_rows(acme, tomorrow)["checkpoints"]

    preview, _ = _run_pages(acme, now=now, batch_size=5, dry_run=True)
    assert preview["checkpoints"] == history - 1 and _pruned_before(acme) is None  # a dry run moves nothing

    counts, first = _run_pages(acme, now=now, batch_size=5)
    assert counts["checkpoints"] == history - 1 and checkpoint_rows(acme, tonight)["checkpoints"] == 1
    assert first >= 6  # the whole history, once
    assert _pruned_before(acme) == now - 30 * DAY

    counts, second = _run_pages(acme, now=now + DAY, batch_size=5)
    assert counts["checkpoints"] == history - 1 and checkpoint_rows(acme, tomorrow)["checkpoints"] == 1
    assert second <= 2, f"the next night's pass read {second} pages of runs again"
    assert _pruned_before(acme) == now + DAY - 30 * DAY


def test_one_workspaces_completed_pass_does_not_skip_anothers_runs(acme, globex, agents):  # noqa: F811
    now = timezone.now()
    for tenant in (acme, globex):
        policy_set(tenant, checkpoints_days=30)
    theirs = real_run(globex, agents["globex"], finished_at=now - 40 * DAY)
    history = checkpoint_rows(globex, theirs)["checkpoints"]

    retention_apply(tenant=acme, now=now)
    assert _pruned_before(acme) == now - 30 * DAY and _pruned_before(globex) is None
    assert checkpoint_rows(globex, theirs)["checkpoints"] == history

    assert retention_apply(tenant=globex, now=now)["checkpoints"] == history - 1
    assert checkpoint_rows(globex, theirs)["checkpoints"] == 1
