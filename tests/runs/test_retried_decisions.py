"""Clients that retry a run's cancel or decision because the answer to the first was lost: the
repeat answers as the first did, and changes and records nothing more (found by a review)."""

import json

from tests.api.conftest import api, issue
from tests.conftest import audit_events
from tests.runs.test_api import make_run, waiting_run


def _post(client, path, body=None):
    return client.post(path, json.dumps(body if body is not None else {}), content_type="application/json")


def test_a_cancel_retried_after_it_ended_a_queued_run_answers_the_cancelled_run(acme, triage):
    """POST /runs/{id}/cancel on a queued run ends it at once; the same request retried answers
    200 with the cancelled run and records nothing more, as a retry while a worker stops a running
    run does. It answered 409 `run_finished`: the client could not tell its own success from a run
    that ended by itself."""
    run = make_run(acme, triage)
    client = api(acme, issue(acme, role="operator", scopes=("read", "run")))
    first = _post(client, f"/api/v1/runs/{run.pk}/cancel")
    assert (first.status_code, first.json()["status"]) == (200, "cancelled")
    again = _post(client, f"/api/v1/runs/{run.pk}/cancel")
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "cancelled"
    assert len(audit_events("acme", action="run.cancel", data={"run": str(run.pk)})) == 1


def test_an_approval_retried_with_its_step_answers_the_decision_made(acme, triage):
    """POST /runs/{id}/approve {step: 2} approves; the same request retried answers 200 with the
    run and records nothing more (the same decision, by the same decider, recorded at that step).
    It answered 409 `run_not_waiting`: the client was told its decision was not applied when it
    was. A different decision at that step is still refused."""
    run = waiting_run(acme, triage)
    client = api(acme, issue(acme, role="operator", scopes=("read", "run")))
    first = _post(client, f"/api/v1/runs/{run.pk}/approve", {"step": 2})
    assert first.status_code == 200, first.content
    again = _post(client, f"/api/v1/runs/{run.pk}/approve", {"step": 2})
    assert again.status_code == 200, again.content
    assert len(audit_events("acme", action="run.approve", data={"run": str(run.pk)})) == 1
    rejected = _post(client, f"/api/v1/runs/{run.pk}/reject", {"step": 2})
    assert rejected.status_code == 409, rejected.content
