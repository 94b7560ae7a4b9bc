"""What the audit trail says of jobs that stop short: an export given up as lost is
`export.finished` with its failure (docs/export-jobs.md); a retention pass that fails part-way
still records `retention.applied`, with the counts of what went and where it stopped."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.lifecycle.exports import QUEUED_LOST_AFTER, _lock
from apps.lifecycle.models import Export
from apps.lifecycle.retention import retention_apply
from apps.runs.models import Run
from tests.api.conftest import api, issue
from tests.conftest import audit_events
from tests.lifecycle.test_retention import export_add, make_run, policy_set
from tests.runs.conftest import FINANCE, TRIAGE, deploy


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def _start(client):
    return client.post("/api/v1/exports", content_type="application/json")


# --- 1. an export that is given up as lost fails without `export.finished` --------------------


def test_a_queued_export_given_up_as_lost_is_recorded_as_finished_with_its_failure(acme):
    """A lost export is marked `failed` (`export_lost`) by the next start, and recorded as
    finished, outcome failure, with that code."""
    client = api(acme, issue(acme, role="owner"))
    lost = _start(client).json()["id"]
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=lost).update(created_at=timezone.now() - QUEUED_LOST_AFTER - timedelta(seconds=1))
    assert _start(client).status_code == 202
    assert client.get(f"/api/v1/exports/{lost}").json()["error"]["code"] == "export_lost"

    events = audit_events(acme.schema_name, action="export.finished")
    assert [(e.target_id, e.outcome, e.data.get("error")) for e in events] == [(lost, "failure", "export_lost")]


def test_a_running_export_whose_worker_died_is_recorded_as_finished_with_its_failure(acme):
    client = api(acme, issue(acme, role="owner"))
    dead = _start(client).json()["id"]
    with schema_context(acme.schema_name):
        Export.objects.filter(pk=dead).update(status=Export.Status.RUNNING)
        assert not _lock(acme.schema_name, dead).held  # its worker's lock is gone
    assert _start(client).status_code == 202

    events = audit_events(acme.schema_name, action="export.finished")
    assert [(e.target_id, e.outcome, e.data.get("error")) for e in events] == [(dead, "failure", "export_lost")]


# --- 2. a retention pass that stops part-way deletes data and records nothing ------------------


def test_a_retention_pass_cut_short_still_records_what_it_deleted(acme, monkeypatch):
    """Runs are deleted (and committed, batch by batch) before exports; when a later kind fails
    (here the storage refuses to delete an archive), the pass still records the runs it deleted,
    as a failure that names the kind it stopped at, then raises."""
    now = timezone.now()
    agent = deploy(acme, FINANCE, TRIAGE)
    policy_set(acme, runs_days=30, exports_days=7)
    old_run = make_run(acme, agent, finished_at=now - timedelta(days=90), steps=1)
    export_add(acme, now - timedelta(days=8), "old")

    def storage_down(name):
        raise OSError("storage unavailable")

    monkeypatch.setattr(default_storage, "delete", storage_down)
    with pytest.raises(OSError):
        retention_apply(tenant=acme, now=now)

    with schema_context(acme.schema_name):
        run_gone = not Run.objects.filter(pk=old_run.pk).exists()
    events = audit_events(acme.schema_name, action="retention.applied")
    assert run_gone
    assert [(e.data["counts"]["runs"], e.data["failed"], e.data["error"], e.outcome) for e in events] == [
        (1, "exports", "OSError", "failure")
    ]
