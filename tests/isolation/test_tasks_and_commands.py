"""Celery tasks and management commands called with one workspace's schema and another's ids
(a purge's keys: tests/lifecycle/test_deletion.py)."""

import contextlib
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.delivery import audit_sink_get
from apps.lifecycle.models import Export
from apps.runs.models import Run
from tests.api.conftest import api, issue
from tests.conftest import client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run

OPERATOR = "operator:1"


# --- Celery tasks called with one schema and another workspace's ids ----------------------------------


def test_run_execute_in_acme_with_a_globex_run_id_leaves_the_globex_run_alone(acme, globex):
    from apps.runs.tasks import run_execute

    agent = deploy(globex, FINANCE, TRIAGE)
    run = make_run(globex, agent, status=Run.Status.QUEUED)
    run_execute.apply(args=[acme.schema_name, str(run.pk)]).get(propagate=False)  # any refusal: globex's run counts
    with schema_context(globex.schema_name):
        fresh = Run.objects.get(pk=run.pk)
        assert (fresh.status, fresh.step_count, fresh.started_at) == (Run.Status.QUEUED, run.step_count, None)


def test_export_task_in_acme_with_a_globex_export_id_writes_nothing(acme, globex, settings, tmp_path):
    from apps.lifecycle.tasks import export_tenant

    settings.MEDIA_ROOT = str(tmp_path)
    with schema_context(globex.schema_name):
        export = Export.objects.create(created_by="test")
    export_tenant.apply(args=[acme.schema_name, str(export.pk)]).get(propagate=False)
    with schema_context(globex.schema_name):
        assert Export.objects.get(pk=export.pk).status == Export.Status.QUEUED
    with schema_context(acme.schema_name):
        assert not Export.objects.filter(pk=export.pk).exists()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [], written


def test_deliver_sink_with_acmes_id_and_a_globex_sink_id_is_gone(acme, globex):
    from apps.audit.tasks import audit_deliver_sink

    response = api(globex, issue(globex)).put(
        "/api/v1/audit/sinks/gsiem", '{"kind": "syslog", "host": "globex.example.com"}', content_type="application/json"
    )
    assert response.status_code == 201
    sink = audit_sink_get(globex.pk, "gsiem")
    status = audit_deliver_sink.apply(args=[acme.pk, sink.pk]).get()
    assert status == "gone"
    assert audit_sink_get(globex.pk, "gsiem").cursor == sink.cursor


def test_retention_task_of_acme_never_touches_globex_runs(acme, globex):
    from apps.lifecycle.tasks import apply_retention_tenant

    agent = deploy(globex, FINANCE, TRIAGE)
    old = make_run(
        globex,
        agent,
        status=Run.Status.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=3650),
    )
    client_for(acme, "owner@acme.test").post("/settings/retention/", {"runs_days": "1"})
    apply_retention_tenant.apply(args=[acme.schema_name]).get()
    with schema_context(globex.schema_name):
        assert Run.objects.filter(pk=old.pk).exists()


@pytest.mark.parametrize("command", ["usage_statement", "audit_export"])
def test_commands_for_acme_never_print_globex_rows(acme, globex, command, capsys):
    from django.core.management import call_command

    from apps.audit.services import audit_record
    from tests.billing.test_rollups import ledger_add

    ledger_add(globex, agent="gsecret-agent", tokens=(424242, 1, 0), when=timezone.now())
    audit_record(action="gsecret.action", actor="test", data={"m": "gsecret"}, chain=globex.pk)
    args = {"usage_statement": ["--tenant", "acme"], "audit_export": ["--tenant", "acme"]}[command]
    with contextlib.suppress(SystemExit):
        call_command(command, *args)
    out = capsys.readouterr()
    assert "gsecret" not in out.out and "424242" not in out.out
