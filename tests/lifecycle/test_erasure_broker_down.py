"""A data-subject erasure of a person named by a run a worker is running: the deletion of that
run's checkpoints, once it stops, is owed in the database with the erasure (CheckpointErasure),
not only in the task queued after the commit. Before, with the Celery broker unreachable at that
moment, the erasure committed (member gone, rows rewritten, `member.erased` recorded), the command
failed with a traceback, the task was never queued, and the run's checkpoints kept the person's
address for good: an erasure made again finds no one (`person_unknown`). Now the command
succeeds, and the runs sweep deletes the checkpoints once the run has stopped (found by the
partial-failure review)."""

import subprocess
import sys

from django_tenants.utils import schema_context

from apps.lifecycle.models import CheckpointErasure
from apps.runs.checkpoints import checkpointer
from apps.runs.models import Run
from apps.runs.services import run_finish
from apps.runs.tasks import run_sweep_tenant
from tests.conftest import ROOT, free_port, server_env
from tests.lifecycle.test_erasure_runs_under_way import ledger, waiting_run  # noqa: F401 — the fixture


def erase(slug: str, email: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "erase_member", slug, email],
        env=server_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_an_erasure_whose_broker_is_down_at_commit_still_deletes_the_running_runs_checkpoints(
    fresh_tenant,
    django_db_blocker,
    ledger,  # noqa: F811
):
    tenant = fresh_tenant
    with django_db_blocker.unblock():
        run = waiting_run(tenant, ledger)
        with schema_context(tenant.schema_name):
            Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)  # a worker holds it
        assert checkpointer(tenant.schema_name).threads_holding(b"pat@acme.test") == [str(run.pk)]

        dead = f"redis://127.0.0.1:{free_port()}/3"  # nothing listens: the broker is down
        erased = erase(tenant.slug, "pat@acme.test", CELERY_BROKER_URL=dead, CELERY_RESULT_BACKEND=dead)
        assert erased.returncode == 0, erased.stderr[-1500:]
        assert "Traceback" not in erased.stderr, erased.stderr[-1500:]
        with schema_context(tenant.schema_name):
            run = Run.objects.get(pk=run.pk)
            assert run.cancel_requested_at is not None
            assert list(CheckpointErasure.objects.values_list("run_id", flat=True)) == [run.pk]
        run_sweep_tenant(tenant.schema_name)  # still running: nothing deleted, still owed
        assert checkpointer(tenant.schema_name).threads_holding(b"pat@acme.test") == [str(run.pk)]
        with schema_context(tenant.schema_name):
            assert CheckpointErasure.objects.filter(run_id=run.pk).exists()
            # The run's worker stops before its next step, as it does after an erasure.
            run_finish(run, Run.Status.CANCELLED, reason="cancelled", message="The run was cancelled.")

        run_sweep_tenant(tenant.schema_name)
        assert checkpointer(tenant.schema_name).threads_holding(b"pat@acme.test") == []
        with schema_context(tenant.schema_name):
            assert not CheckpointErasure.objects.exists()
