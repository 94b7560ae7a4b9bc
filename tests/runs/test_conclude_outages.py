"""A database or Redis blip while a worker records a run's end (Attempt._conclude) puts the run
back in the queue for the task's retry, as a blip earlier in the attempt does (docs/runs.md,
"Durability": "neither counts as a lost worker")."""

from django.db import OperationalError
from django_tenants.utils import schema_context

import apps.runs.engine as engine
import apps.runs.tasks as run_tasks
from apps.runs.models import Run
from apps.runs.services import run_start
from tests.conftest import tenant_user


def test_database_blips_while_recording_the_runs_end_do_not_fail_it_as_worker_lost(acme, triage, monkeypatch):
    """The six short outages tests/runs/test_durability_windows.py survives at the start of an
    attempt, here hitting `run_finish` in `Attempt._conclude`: the run ends as its graph did, its
    recoveries untouched."""
    with schema_context("acme"):
        run = run_start(actor=tenant_user(acme, "owner@acme.test"), agent=triage, input="Triage invoice INV-1001.")
    finish = engine.run_finish
    blips = []

    def flaky_finish(*args, **kwargs):
        if len(blips) < 6:  # six short outages, well under the task's DB_RETRIES
            blips.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return finish(*args, **kwargs)

    monkeypatch.setattr(engine, "run_finish", flaky_finish)
    run_tasks.run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)
    with schema_context("acme"):
        run = Run.objects.get(pk=run.pk)
    assert (run.status, run.reason) == ("succeeded", ""), (
        f"{len(blips)} blips while recording the end: run {run.status} ({run.reason}), recoveries {run.recoveries}: "
        "each retry was counted as a lost worker"
    )
