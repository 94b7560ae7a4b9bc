"""A cancel asked again while the run's worker stops it (apps/runs/services.py `run_cancel`) is
answered the same and changes nothing: each repeat used to append another `run.cancel` event and
move `updated_at`, though one cancellation was made (as a revoke of a revoked token records none).
Found by a review."""

import json

from django.utils import timezone
from django_tenants.utils import schema_context

from apps.runs.models import Run
from tests.api.conftest import api, issue
from tests.conftest import audit_events, client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run


def _cancel(client, run):
    return client.post(f"/api/v1/runs/{run.pk}/cancel", json.dumps({}), content_type="application/json")


def test_cancelling_a_run_already_being_cancelled_is_not_recorded_as_a_second_cancel(acme):
    """API: three repeats answer 200 with the first cancel's time; one event, `updated_at` unmoved."""
    triage = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, triage, status=Run.Status.RUNNING, started_at=timezone.now())
    client = api(acme, issue(acme, role="operator", scopes=("run",)))

    first = _cancel(client, run)
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "running" and first.json()["cancel_requested_at"]
    with schema_context("acme"):
        after_first = Run.objects.get(pk=run.pk)

    for _ in range(3):
        again = _cancel(client, run)
        assert again.status_code == 200, again.content
        assert again.json()["cancel_requested_at"] == first.json()["cancel_requested_at"]

    with schema_context("acme"):
        after_repeats = Run.objects.get(pk=run.pk)
    events = audit_events("acme", action="run.cancel", data={"run": str(run.pk)})
    assert (len(events), after_repeats.updated_at) == (1, after_first.updated_at)


def test_console_cancel_repeated_on_a_stopping_run_records_one_event(acme):
    """The console's *Cancel run* stays shown while a worker stops the run: pressed twice, one event."""
    triage = deploy(acme, FINANCE, TRIAGE)
    run = make_run(acme, triage, status=Run.Status.RUNNING, started_at=timezone.now())
    owner = client_for(acme, "owner@acme.test")
    for _ in range(2):
        response = owner.post(f"/runs/{run.pk}/cancel/")
        assert response.status_code == 302, response.status_code
    assert len(audit_events("acme", action="run.cancel", data={"run": str(run.pk)})) == 1
