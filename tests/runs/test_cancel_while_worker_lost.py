"""A cancellation asked for while a run's worker was lost is honoured when the re-delivered
task finds the run out of recoveries: the run ends `cancelled`, not `failed`/`worker_lost`
(docs/runs.md, "Limits and cancellation")."""

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.engine import run_advance
from apps.runs.models import Run
from apps.runs.services import run_cancel, run_start
from tests.conftest import tenant_user


def test_a_run_cancelled_while_its_worker_was_lost_ends_cancelled_not_worker_lost(acme, triage, settings):
    """The run is `running` (its worker died, after as many take-overs as are allowed) when its
    owner cancels it (only `cancel_requested_at` is set: a worker may still be stopping it);
    the re-delivered task's claim is refused, and the cancellation decides the ending."""
    owner = tenant_user(acme, "owner@acme.test")
    with schema_context("acme"):
        run = run_start(actor=owner, agent=triage, input="Triage invoice INV-1001.")
        # Its last worker died mid-run, after as many take-overs as are allowed.
        Run.objects.filter(pk=run.pk).update(
            status=Run.Status.RUNNING,
            started_at=timezone.now(),
            recoveries=settings.FOUNDRY_RUN_MAX_RECOVERIES,
        )
        run_cancel(actor=owner, run=Run.objects.get(pk=run.pk))
        outcome = run_advance(run.pk)  # the re-delivered task
        run = Run.objects.get(pk=run.pk)
    assert (run.status, run.reason) == ("cancelled", "cancelled"), (
        f"cancelled by its owner, the run ended {run.status} ({run.reason}: {run.message!r}), task {outcome!r}"
    )
